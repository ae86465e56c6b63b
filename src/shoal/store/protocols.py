"""Per-domain store interfaces. Backends implement these and pass the same contract tests."""

from __future__ import annotations

import builtins
from typing import Protocol

from shoal.core.types import Alias, FunctionConfig, Policy


class FunctionStore(Protocol):
    """Function versions' configurations, keyed by (account, name, version)."""

    def create(self, config: FunctionConfig) -> None:
        """Insert a new function's ``$LATEST``; ``ResourceConflictException`` when the name is taken."""

    def get(self, account_id: str, name: str, version: str) -> FunctionConfig | None: ...

    def put(self, config: FunctionConfig, *, expected_revision: str | None = None) -> None:
        """Replace an existing version. With ``expected_revision``, only if the stored one still has it
        (``PreconditionFailedException`` otherwise)."""

    def delete(self, account_id: str, name: str, version: str | None = None) -> list[FunctionConfig]:
        """Delete one version, or the whole function when ``version`` is None; returns what was deleted."""

    def list(self, account_id: str | None = None) -> list[FunctionConfig]:
        """Every version of every function (of one account), ordered by name then version."""

    def code_in_use(self, code_key: str) -> bool: ...

    def put_alias(self, alias: Alias, *, create: bool = False) -> None:
        """Insert (``create``: ``ResourceConflictException`` when it exists) or replace an alias."""

    def delete_alias(self, account_id: str, function_name: str, name: str) -> None: ...

    def list_aliases(self, account_id: str | None = None) -> builtins.list[Alias]: ...

    def put_policy(self, policy: Policy) -> None:
        """Replace a policy; one with no statements is removed."""

    def list_policies(self, account_id: str | None = None) -> builtins.list[Policy]: ...

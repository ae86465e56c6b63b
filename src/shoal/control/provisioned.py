"""Provisioned concurrency (Put/Get/Delete/ListProvisionedConcurrencyConfig[s]) and its reconciliation
into initialised environments per version (spec §7)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

from shoal.control.functions import FunctionService
from shoal.control.validation import Problems
from shoal.core.arns import LATEST, FunctionRef, function_arn
from shoal.core.errors import ApiError, InvalidParameterValueException, ResourceConflictException
from shoal.core.types import FunctionConfig, State


class ProvisionedCapacity(Protocol):
    """What provisioned concurrency needs from the node's environments (the environment pool provides it)."""

    def set_provisioned(self, config: FunctionConfig, count: int) -> None: ...

    def provisioned_status(self, config: FunctionConfig) -> tuple[int, int, str | None]: ...


class ProvisionedConcurrencyConfigNotFoundException(ApiError):
    status, code, error_class = 404, "ProvisionedConcurrencyConfigNotFoundException", "User"


def _timestamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(epoch))


class ProvisionedService:
    def __init__(self, functions: FunctionService, pool: ProvisionedCapacity, account_limit: int) -> None:
        self.functions = functions
        self.catalog = functions.catalog
        self.pool = pool
        self.region = functions.region
        self.account_limit = account_limit
        self._targets: dict[tuple[str, str], dict[str, tuple[FunctionConfig, int]]] = {}
        self.catalog.subscribe_function(self.reconcile)

    # ---- operations -----------------------------------------------------------------------------------

    async def put(self, account_id: str, ref: FunctionRef, body: Mapping[str, Any]) -> dict[str, Any]:
        qualifier = self._qualifier(ref)
        count = body.get("ProvisionedConcurrentExecutions")
        p = Problems()
        if count is None:
            p.add(None, "provisionedConcurrentExecutions", "Member must not be null")
        elif isinstance(count, bool) or not isinstance(count, int):
            raise InvalidParameterValueException("ProvisionedConcurrentExecutions must be an integer.")
        elif count < 1:
            p.add(
                count, "provisionedConcurrentExecutions", "Member must have value greater than or equal to 1"
            )
        p.raise_if_any()
        assert isinstance(count, int)
        async with self.functions.lock(account_id, ref.name):
            config, _ = self.functions.resolve(account_id, FunctionRef(ref.name, ref.account_id, qualifier))
            if config.state is State.PENDING:
                raise ResourceConflictException(
                    "The operation cannot be performed at this time. "
                    "The function is currently in the following state: Pending"
                )
            latest = self.functions.get(account_id, FunctionRef(ref.name, ref.account_id))
            others = sum(v["requested"] for q, v in latest.provisioned.items() if q != qualifier)
            if latest.reserved_concurrency is not None and others + count > latest.reserved_concurrency:
                raise InvalidParameterValueException(
                    f"Requested Provisioned Concurrency ({others + count}) should not be greater than the "
                    f"reserved concurrency for function ({latest.reserved_concurrency})."
                )
            unreserved = self.account_limit - sum(
                c.reserved_concurrency or 0 for c in self.catalog.all(account_id) if c.version == LATEST
            )
            if latest.reserved_concurrency is None and others + count > unreserved - 100:
                raise InvalidParameterValueException(
                    "Specified ConcurrentExecutions for function is greater than account's unreserved "
                    f"concurrency [{unreserved}]."
                )
            entry = {"requested": count, "last_modified": _timestamp(time.time())}
            await self.catalog.put(latest.evolve(provisioned={**latest.provisioned, qualifier: entry}))
        return self.render(account_id, latest.name, qualifier, entry, with_arn=False)

    def get(self, account_id: str, ref: FunctionRef) -> dict[str, Any]:
        qualifier = self._qualifier(ref)
        latest = self.functions.get(account_id, FunctionRef(ref.name, ref.account_id))
        entry = latest.provisioned.get(qualifier)
        if entry is None:
            raise ProvisionedConcurrencyConfigNotFoundException(
                "No Provisioned Concurrency Config found for this function"
            )
        return self.render(account_id, latest.name, qualifier, entry, with_arn=False)

    def list(self, account_id: str, ref: FunctionRef) -> list[dict[str, Any]]:
        latest = self.functions.get(account_id, FunctionRef(ref.name, ref.account_id))
        return [
            self.render(account_id, latest.name, q, e, with_arn=True)
            for q, e in sorted(latest.provisioned.items())
        ]

    async def delete(self, account_id: str, ref: FunctionRef) -> None:
        qualifier = self._qualifier(ref)
        async with self.functions.lock(account_id, ref.name):
            latest = self.functions.get(account_id, FunctionRef(ref.name, ref.account_id))
            if qualifier not in latest.provisioned:
                raise ProvisionedConcurrencyConfigNotFoundException(
                    "No Provisioned Concurrency Config found for this function"
                )
            remaining = {q: e for q, e in latest.provisioned.items() if q != qualifier}
            await self.catalog.put(latest.evolve(provisioned=remaining))

    # ---- status and reconciliation --------------------------------------------------------------------

    def render(
        self, account_id: str, name: str, qualifier: str, entry: Mapping[str, Any], *, with_arn: bool
    ) -> dict[str, Any]:
        requested = int(entry["requested"])
        allocated, reason = 0, None
        version = self._version(account_id, name, qualifier)
        if version is not None:
            _, allocated, reason = self.pool.provisioned_status(version)
            allocated = min(allocated, requested)
        out: dict[str, Any] = {
            "RequestedProvisionedConcurrentExecutions": requested,
            "AvailableProvisionedConcurrentExecutions": allocated,
            "AllocatedProvisionedConcurrentExecutions": allocated,
            "Status": "FAILED" if reason else ("READY" if allocated >= requested else "IN_PROGRESS"),
            "LastModified": entry["last_modified"],
        }
        if reason:
            out["StatusReason"] = reason
        if with_arn:
            out = {"FunctionArn": function_arn(self.region, account_id, name, qualifier), **out}
        return out

    def reconcile(self, account_id: str, name: str) -> None:
        """Make the pool keep, per version, the environments every qualifier's configuration asks for."""
        latest = self.catalog.get(account_id, name, LATEST)
        wanted: dict[str, tuple[FunctionConfig, int]] = {}
        for qualifier, entry in (latest.provisioned if latest else {}).items():
            version = self._version(account_id, name, qualifier)
            if version is not None and version.state is State.ACTIVE:
                _, count = wanted.get(version.version, (version, 0))
                wanted[version.version] = (version, count + int(entry["requested"]))
        before = self._targets.get((account_id, name), {})
        for key, (config, _) in before.items():
            if key not in wanted:
                self.pool.set_provisioned(config, 0)
        for config, count in wanted.values():
            self.pool.set_provisioned(config, count)
        self._targets[(account_id, name)] = wanted

    def reconcile_all(self) -> None:
        for config in self.catalog.all():
            if config.version == LATEST and config.provisioned:
                self.reconcile(config.account_id, config.name)

    def _version(self, account_id: str, name: str, qualifier: str) -> FunctionConfig | None:
        alias = self.catalog.alias(account_id, name, qualifier)
        return self.catalog.get(account_id, name, alias.function_version if alias else qualifier)

    def _qualifier(self, ref: FunctionRef) -> str:
        if not ref.qualifier:
            raise InvalidParameterValueException(
                "Qualifier is required: name a published version or an alias."
            )
        if ref.qualifier == LATEST:
            raise InvalidParameterValueException(
                "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
            )
        return ref.qualifier

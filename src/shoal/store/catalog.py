"""An in-memory, write-through view of a ``FunctionStore``.

The invoke hot path reads configurations from here — a dict lookup, no database round trip. Every write goes
through the catalog, which updates the store first and then the memory, and tells subscribers (the
environment pools retire environments of a changed version).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from shoal.core.arns import LATEST
from shoal.core.types import Alias, FunctionConfig, Policy
from shoal.store.protocols import FunctionStore

Key = tuple[str, str, str]  # (account, name, version)
Listener = Callable[[FunctionConfig, bool], None]  # (config, deleted)


class FunctionCatalog:
    def __init__(self, store: FunctionStore) -> None:
        self.store = store
        self._configs: dict[Key, FunctionConfig] = {}
        self._aliases: dict[Key, Alias] = {}
        self._policies: dict[Key, Policy] = {}
        self._listeners: list[Listener] = []
        self._function_listeners: list[Callable[[str, str], None]] = []
        # per account, the concurrency its functions reserve: read on every invoke, kept up to date here
        self._reserved: dict[str, int] = {}

    def load(self) -> None:
        self._configs = {(c.account_id, c.name, c.version): c for c in self.store.list()}
        self._reserved = {}
        for config in self._configs.values():
            self._reserve(config, 1)
        self._aliases = {(a.account_id, a.function_name, a.name): a for a in self.store.list_aliases()}
        self._policies = {(p.account_id, p.function_name, p.qualifier): p for p in self.store.list_policies()}

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def subscribe_function(self, listener: Callable[[str, str], None]) -> None:
        """Called with (account, function name) after any change to a function, its versions or aliases."""
        self._function_listeners.append(listener)

    def _changed(self, account_id: str, name: str) -> None:
        for listener in self._function_listeners:
            listener(account_id, name)

    def get(self, account_id: str, name: str, version: str) -> FunctionConfig | None:
        return self._configs.get((account_id, name, version))

    def versions(self, account_id: str, name: str) -> list[FunctionConfig]:
        return [c for (a, n, _), c in self._configs.items() if a == account_id and n == name]

    def all(self, account_id: str | None = None) -> list[FunctionConfig]:
        return [c for c in self._configs.values() if account_id is None or c.account_id == account_id]

    def reserved_total(self, account_id: str) -> int:
        """The concurrency the account's functions reserve, together (a dict lookup)."""
        return self._reserved.get(account_id, 0)

    def _reserve(self, config: FunctionConfig, sign: int) -> None:
        if config.version == LATEST and config.reserved_concurrency:
            total = self._reserved.get(config.account_id, 0) + sign * config.reserved_concurrency
            self._reserved[config.account_id] = total

    # Writes run the store call in a worker thread and then update memory on the event loop, so listeners
    # (which touch asyncio objects) always run on the loop.

    async def create(self, config: FunctionConfig) -> None:
        await asyncio.to_thread(self.store.create, config)
        self._set(config)

    async def create_version(self, config: FunctionConfig) -> None:
        await asyncio.to_thread(self.store.create, config)
        self._set(config)

    async def put(self, config: FunctionConfig, *, expected_revision: str | None = None) -> None:
        await asyncio.to_thread(lambda: self.store.put(config, expected_revision=expected_revision))
        self._set(config)

    async def delete(self, account_id: str, name: str, version: str | None = None) -> list[FunctionConfig]:
        deleted = await asyncio.to_thread(self.store.delete, account_id, name, version)
        for config in deleted:
            held = self._configs.pop((config.account_id, config.name, config.version), None)
            if held is not None:
                self._reserve(held, -1)
            self._notify(config, True)
        if version is None:
            for table in (self._aliases, self._policies):
                for key in [k for k in table if k[0] == account_id and k[1] == name]:
                    del table[key]
        else:
            self._policies.pop((account_id, name, version), None)
        return deleted

    # ---- aliases and policies ----------------------------------------------------------------------------

    def alias(self, account_id: str, function_name: str, name: str) -> Alias | None:
        return self._aliases.get((account_id, function_name, name))

    def aliases(self, account_id: str, function_name: str) -> list[Alias]:
        return sorted(
            (a for (acc, fn, _), a in self._aliases.items() if acc == account_id and fn == function_name),
            key=lambda a: a.name,
        )

    async def put_alias(self, alias: Alias, *, create: bool = False) -> None:
        await asyncio.to_thread(lambda: self.store.put_alias(alias, create=create))
        self._aliases[(alias.account_id, alias.function_name, alias.name)] = alias
        self._changed(alias.account_id, alias.function_name)

    async def delete_alias(self, alias: Alias) -> None:
        await asyncio.to_thread(self.store.delete_alias, alias.account_id, alias.function_name, alias.name)
        self._aliases.pop((alias.account_id, alias.function_name, alias.name), None)
        self._policies.pop((alias.account_id, alias.function_name, alias.name), None)
        self._changed(alias.account_id, alias.function_name)

    def policy(self, account_id: str, function_name: str, qualifier: str) -> Policy | None:
        return self._policies.get((account_id, function_name, qualifier))

    async def put_policy(self, policy: Policy) -> None:
        await asyncio.to_thread(self.store.put_policy, policy)
        key = (policy.account_id, policy.function_name, policy.qualifier)
        if policy.statements:
            self._policies[key] = policy
        else:
            self._policies.pop(key, None)

    def _set(self, config: FunctionConfig) -> None:
        key = (config.account_id, config.name, config.version)
        held = self._configs.get(key)
        if held is not None:
            self._reserve(held, -1)
        self._configs[key] = config
        self._reserve(config, 1)
        self._notify(config, False)

    def _notify(self, config: FunctionConfig, deleted: bool) -> None:
        for listener in self._listeners:
            listener(config, deleted)
        self._changed(config.account_id, config.name)

"""The catalog's running total of reserved concurrency (read on every invoke) matches its configurations."""

import asyncio
from dataclasses import replace

from shoal.store.catalog import FunctionCatalog
from shoal.store.sql import SqlFunctionStore, sqlite_engine
from tests.function_configs import function_config

A, B = "123456789012", "210987654321"


def _by_hand(catalog: FunctionCatalog, account: str) -> int:
    return sum(c.reserved_concurrency or 0 for c in catalog.all(account) if c.version == "$LATEST")


def test_reserved_total_follows_creates_changes_versions_and_deletes(tmp_path):
    store = SqlFunctionStore(sqlite_engine(tmp_path / "db.sqlite"))
    catalog = FunctionCatalog(store)
    catalog.load()

    async def steps():
        seen = []

        def note():
            seen.append((catalog.reserved_total(A), _by_hand(catalog, A), catalog.reserved_total(B), _by_hand(catalog, B)))

        await catalog.create(function_config(runtime="python3.12", name="f", reserved_concurrency=10))
        await catalog.create(function_config(runtime="python3.12", name="g"))
        await catalog.create(function_config(runtime="python3.12", name="h", account_id=B, reserved_concurrency=7))
        note()
        await catalog.put(replace(catalog.get(A, "f", "$LATEST"), reserved_concurrency=25, revision_id="r2"))
        await catalog.create_version(function_config(runtime="python3.12", name="f", version="1", reserved_concurrency=25))
        note()  # a published version does not reserve anything of its own
        await catalog.put(replace(catalog.get(A, "g", "$LATEST"), reserved_concurrency=0, revision_id="r2"))
        note()  # zero reserved counts as reserved (nothing runs), and adds nothing
        await catalog.delete(A, "f", "1")
        note()
        await catalog.delete(A, "f")
        note()
        return seen

    seen = asyncio.run(steps())
    store.close()
    assert [(s[0], s[2]) for s in seen] == [(10, 7), (25, 7), (25, 7), (25, 7), (0, 7)]
    assert all(s[0] == s[1] and s[2] == s[3] for s in seen)

    reloaded = FunctionCatalog(SqlFunctionStore(sqlite_engine(tmp_path / "db.sqlite")))
    reloaded.load()
    assert reloaded.reserved_total(A) == 0 and reloaded.reserved_total(B) == 7
    reloaded.store.close()

"""Contract tests every FunctionStore backend must pass (SQLite here; PostgreSQL joins with cluster mode)."""

import pytest

from shoal.core.errors import PreconditionFailedException, ResourceConflictException
from shoal.core.types import FunctionConfig, State
from shoal.store.sql import SqlFunctionStore, sqlite_engine

SHA = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="  # sha256 of b"" in base64


def make(name="f", version="$LATEST", revision="r1", **kw):
    return FunctionConfig(account_id="123456789012", name=name, runtime="python3.12", role="arn:aws:iam::1:role/r",
                          handler="app.handler", code_sha256=SHA, code_size=1, last_modified="x",
                          revision_id=revision, version=version, **kw)


@pytest.fixture(params=["sqlite"])
def store(request, tmp_path):
    s = SqlFunctionStore(sqlite_engine(tmp_path / "db.sqlite"))
    yield s
    s.close()


def test_create_get_roundtrip_keeps_every_field(store):
    config = make(environment={"A": "1"}, architectures=("arm64",), extra={"Tags": {"k": "v"}})
    store.create(config)
    assert store.get("123456789012", "f", "$LATEST") == config
    assert store.get("123456789012", "f", "1") is None
    assert store.get("999999999999", "f", "$LATEST") is None


def test_create_twice_conflicts(store):
    store.create(make())
    with pytest.raises(ResourceConflictException, match="Function already exist: f"):
        store.create(make())


def test_put_with_expected_revision(store):
    store.create(make())
    store.put(make(revision="r2", state=State.ACTIVE), expected_revision="r1")
    assert store.get("123456789012", "f", "$LATEST").revision_id == "r2"
    with pytest.raises(PreconditionFailedException):
        store.put(make(revision="r3"), expected_revision="r1")
    assert store.get("123456789012", "f", "$LATEST").revision_id == "r2"


def test_list_orders_latest_then_numeric_versions(store):
    for v in ("$LATEST", "10", "2", "1"):
        store.create(make(version=v))
    store.create(make(name="a"))
    assert [(c.name, c.version) for c in store.list()] == [
        ("a", "$LATEST"), ("f", "$LATEST"), ("f", "1"), ("f", "2"), ("f", "10")]


def test_delete_function_or_version_and_code_in_use(store):
    store.create(make())
    store.create(make(version="1"))
    key = make().code_key
    assert store.code_in_use(key)
    assert [c.version for c in store.delete("123456789012", "f", "1")] == ["1"]
    assert [c.version for c in store.delete("123456789012", "f")] == ["$LATEST"]
    assert store.list() == []
    assert not store.code_in_use(key)


def test_survives_reopen(tmp_path):
    path = tmp_path / "db.sqlite"
    s = SqlFunctionStore(sqlite_engine(path))
    s.create(make())
    s.close()
    s2 = SqlFunctionStore(sqlite_engine(path))
    assert s2.get("123456789012", "f", "$LATEST") == make()
    s2.close()

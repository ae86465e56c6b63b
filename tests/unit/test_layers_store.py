"""Contract tests of the layer store (SQLite here; PostgreSQL joins with cluster mode), and the pure helpers
of the layer service: version numbering, deleted versions, permissions and their RevisionId."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.control.layers import (
    ResolvedLayer,
    check_total_unzipped,
    policy_json,
    statement_document,
)
from shoal.core.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
)
from shoal.store.layers import (
    LayerStatement,
    LayerVersionMissing,
    NewLayerVersion,
    SqlLayerStore,
    StatementMissing,
)
from shoal.store.sql import SqlFunctionStore, sqlite_engine

ACCOUNT = "123456789012"
OTHER = "210987654321"
SHA = "a" * 64


def new(
    sha: str = SHA, runtimes: tuple[str, ...] = (), archs: tuple[str, ...] = (), **kw: object
) -> NewLayerVersion:
    data: dict[str, object] = dict(
        description="",
        compatible_runtimes=runtimes,
        compatible_architectures=archs,
        license_info=None,
        created_date="2024-01-01T00:00:00.000+0000",
        code_sha256_hex=sha,
        code_sha256="qqqq",
        code_size=10,
        unzipped_size=20,
    )
    data.update(kw)
    return NewLayerVersion(**data)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlLayerStore]:
    s = SqlLayerStore(sqlite_engine(tmp_path / "db.sqlite"))
    yield s
    s.close()


# ---- versions ---------------------------------------------------------------------------------------------


def test_versions_are_numbered_from_one_per_layer_and_account(store: SqlLayerStore) -> None:
    assert [store.publish(ACCOUNT, "a", new()).version for _ in range(3)] == [1, 2, 3]
    assert store.publish(ACCOUNT, "b", new()).version == 1
    assert store.publish(OTHER, "a", new()).version == 1
    assert store.next_version(ACCOUNT, "a") == 4
    assert store.next_version(ACCOUNT, "never-published") == 1


def test_publish_roundtrip_keeps_every_field(store: SqlLayerStore) -> None:
    given = new(
        description="d",
        runtimes=("python3.12", "python3.11"),
        archs=("arm64",),
        license_info="MIT",
        code_size=123,
        unzipped_size=456,
    )
    published = store.publish(ACCOUNT, "lib", given)
    assert store.get(ACCOUNT, "lib", 1) == published
    assert published.compatible_runtimes == ("python3.12", "python3.11")
    assert published.compatible_architectures == ("arm64",)
    assert (published.license_info, published.code_size, published.unzipped_size) == ("MIT", 123, 456)
    assert store.get(ACCOUNT, "lib", 2) is None
    assert store.get(OTHER, "lib", 1) is None


def test_numbers_are_never_reused_after_deleting(store: SqlLayerStore) -> None:
    for _ in range(3):
        store.publish(ACCOUNT, "lib", new())
    assert store.delete(ACCOUNT, "lib", 3)  # the newest
    assert store.publish(ACCOUNT, "lib", new()).version == 4
    for version in (1, 2, 4):
        assert store.delete(ACCOUNT, "lib", version)
    assert store.versions(ACCOUNT, "lib") == []
    assert store.publish(ACCOUNT, "lib", new()).version == 5  # even with every version gone


def test_deleted_versions_are_hidden_but_kept(store: SqlLayerStore) -> None:
    store.publish(ACCOUNT, "lib", new())
    store.publish(ACCOUNT, "lib", new(sha="b" * 64))
    assert store.delete(ACCOUNT, "lib", 1)
    assert not store.delete(ACCOUNT, "lib", 1)  # already deleted
    assert not store.delete(ACCOUNT, "lib", 9)  # never existed
    assert store.get(ACCOUNT, "lib", 1) is None
    kept = store.get(ACCOUNT, "lib", 1, include_deleted=True)
    assert kept is not None and kept.deleted and kept.version == 1
    assert [r.version for r in store.versions(ACCOUNT, "lib")] == [2]
    assert store.code_in_use(SHA)  # functions that reference version 1 still need its zip
    assert not store.code_in_use("c" * 64)


def test_versions_lists_layers_by_name_newest_first(store: SqlLayerStore) -> None:
    for name in ("b", "a", "b", "a", "a"):
        store.publish(ACCOUNT, name, new())
    store.publish(OTHER, "a", new())
    assert [(r.name, r.version) for r in store.versions(ACCOUNT)] == [
        ("a", 3),
        ("a", 2),
        ("a", 1),
        ("b", 2),
        ("b", 1),
    ]
    assert [r.version for r in store.versions(ACCOUNT, "b")] == [2, 1]


def test_concurrent_publishes_get_distinct_numbers(store: SqlLayerStore) -> None:
    got: list[int] = []
    lock = threading.Lock()

    def publish() -> None:
        for _ in range(5):
            version = store.publish(ACCOUNT, "busy", new()).version
            with lock:
                got.append(version)

    threads = [threading.Thread(target=publish) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 21))


def test_shares_the_database_with_the_function_store(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "shoal.db")
    functions = SqlFunctionStore(engine)
    layers = SqlLayerStore(engine)
    layers.publish(ACCOUNT, "lib", new())
    assert layers.get(ACCOUNT, "lib", 1) is not None
    assert functions.list() == []
    layers.close()


# ---- permissions ------------------------------------------------------------------------------------------


def test_policy_lifecycle_and_revision_ids(store: SqlLayerStore) -> None:
    store.publish(ACCOUNT, "lib", new())
    assert store.policy(ACCOUNT, "lib", 1) is None
    first = store.add_statement(ACCOUNT, "lib", 1, LayerStatement("s1", "lambda:GetLayerVersion", "*"))
    assert [s.statement_id for s in first.statements] == ["s1"]
    second = store.add_statement(
        ACCOUNT, "lib", 1, LayerStatement("s2", "lambda:GetLayerVersion", OTHER), first.revision_id
    )
    assert second.revision_id != first.revision_id
    assert [s.statement_id for s in second.statements] == ["s1", "s2"]  # in the order they were added
    assert store.policy(ACCOUNT, "lib", 1) == second
    with pytest.raises(PreconditionFailedException, match="does not match the latest Revision Id"):
        store.remove_statement(ACCOUNT, "lib", 1, "s1", first.revision_id)
    store.remove_statement(ACCOUNT, "lib", 1, "s1", second.revision_id)
    third = store.policy(ACCOUNT, "lib", 1)
    assert third is not None and [s.statement_id for s in third.statements] == ["s2"]
    assert third.revision_id not in (first.revision_id, second.revision_id)
    store.remove_statement(ACCOUNT, "lib", 1, "s2")
    assert store.policy(ACCOUNT, "lib", 1) is None  # the last statement takes the policy with it


def test_duplicate_statement_id_conflicts(store: SqlLayerStore) -> None:
    store.publish(ACCOUNT, "lib", new())
    store.add_statement(ACCOUNT, "lib", 1, LayerStatement("s1", "lambda:GetLayerVersion", "*"))
    with pytest.raises(ResourceConflictException) as ei:
        store.add_statement(ACCOUNT, "lib", 1, LayerStatement("s1", "lambda:GetLayerVersion", OTHER))
    assert ei.value.message == (
        "The statement id (s1) provided already exists. Please provide a new statement id, or remove the "
        "existing statement."
    )


def test_revision_precondition_on_add(store: SqlLayerStore) -> None:
    store.publish(ACCOUNT, "lib", new())
    with pytest.raises(PreconditionFailedException):  # no policy yet: no RevisionId can match
        store.add_statement(ACCOUNT, "lib", 1, LayerStatement("s1", "lambda:GetLayerVersion", "*"), "r-x")
    policy = store.add_statement(ACCOUNT, "lib", 1, LayerStatement("s1", "lambda:GetLayerVersion", "*"))
    with pytest.raises(PreconditionFailedException):
        store.add_statement(ACCOUNT, "lib", 1, LayerStatement("s2", "lambda:GetLayerVersion", "*"), "r-x")
    assert store.policy(ACCOUNT, "lib", 1) == policy


def test_policies_are_per_version_and_need_a_live_version(store: SqlLayerStore) -> None:
    store.publish(ACCOUNT, "lib", new())
    store.publish(ACCOUNT, "lib", new())
    store.add_statement(ACCOUNT, "lib", 1, LayerStatement("s1", "lambda:GetLayerVersion", "*"))
    assert store.policy(ACCOUNT, "lib", 2) is None
    store.add_statement(ACCOUNT, "lib", 2, LayerStatement("s1", "lambda:GetLayerVersion", "*"))  # same sid ok
    with pytest.raises(StatementMissing):
        store.remove_statement(ACCOUNT, "lib", 2, "nope")
    store.delete(ACCOUNT, "lib", 1)
    for call in (
        lambda: store.policy(ACCOUNT, "lib", 1),
        lambda: store.add_statement(ACCOUNT, "lib", 1, LayerStatement("s9", "lambda:GetLayerVersion", "*")),
        lambda: store.remove_statement(ACCOUNT, "lib", 1, "s1"),
        lambda: store.policy(ACCOUNT, "lib", 7),
    ):
        with pytest.raises(LayerVersionMissing):
            call()


# ---- pure helpers -----------------------------------------------------------------------------------------

RESOURCE = "arn:aws:lambda:us-east-1:123456789012:layer:my-layer:1"


def test_statement_document_as_aws_renders_it() -> None:
    account = statement_document(
        LayerStatement("xaccount", "lambda:GetLayerVersion", "223456789012"), RESOURCE
    )
    # the form of botocore's example (examples-1.json, AddLayerVersionPermission)
    assert policy_json(account) == (
        '{"Sid":"xaccount","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::223456789012:root"},'
        '"Action":"lambda:GetLayerVersion","Resource":"arn:aws:lambda:us-east-1:123456789012:layer:my-layer:1"}'
    )
    everyone = statement_document(
        LayerStatement("all", "lambda:GetLayerVersion", "*", "o-abcdefghij"), RESOURCE
    )
    assert everyone["Principal"] == "*"
    assert everyone["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}
    root = statement_document(
        LayerStatement("r", "lambda:GetLayerVersion", f"arn:aws:iam::{OTHER}:root"), RESOURCE
    )
    assert root["Principal"] == {"AWS": f"arn:aws:iam::{OTHER}:root"}
    assert "Condition" not in root
    assert json.loads(policy_json(root)) == root


def test_check_total_unzipped() -> None:
    limit = 262_144_000
    layers = [ResolvedLayer("arn:1", 10, SHA, 100_000_000), ResolvedLayer("arn:2", 10, SHA, 100_000_000)]
    check_total_unzipped(limit - 200_000_000, layers)  # exactly at the limit is fine
    with pytest.raises(InvalidParameterValueException) as ei:
        check_total_unzipped(limit - 200_000_000 + 1, layers)
    assert ei.value.message == (
        "Function code combined with layers exceeds the maximum allowed size of 262144000 bytes. "
        "The actual size is 262144001 bytes."
    )
    with pytest.raises(InvalidParameterValueException) as ei:
        check_total_unzipped(0, [*layers, ResolvedLayer("arn:3", 10, SHA, 62_144_001)])
    assert ei.value.message == "Layers consume more than the available size of 262144000 bytes"


def test_resolved_layer_roundtrips_through_json() -> None:
    layer = ResolvedLayer("arn:aws:lambda:us-east-1:123456789012:layer:l:3", 169, SHA, 4096)
    assert ResolvedLayer.from_dict(json.loads(json.dumps(layer.to_dict()))) == layer
    assert layer.configuration() == {"Arn": layer.arn, "CodeSize": 169}

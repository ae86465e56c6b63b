"""Layers on a real code store, a real SQLite database and (for /opt inside a function) the namespace
sandbox: publishing refuses hostile zips and stores nothing, /opt trees merge layers in order with later
layers winning, the 250 MB limit holds, and a function's ``Layers`` parameter resolves as on AWS."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import stat
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.control.layers import LayerService, ResolvedLayer, check_total_unzipped
from shoal.core.errors import (
    AccessDeniedException,
    InvalidParameterValueException,
    NotImplementedException,
    ValidationException,
)
from shoal.runtimes.python import BOOTSTRAP_DIR
from shoal.sandbox.base import SandboxSpec
from shoal.sandbox.namespace import NamespaceBackend
from shoal.store.code import FileCodeStore
from shoal.store.layers import SqlLayerStore
from shoal.store.packages import remove_tree
from shoal.store.sql import sqlite_engine
from tests.integration.conftest import needs_namespace

ACCOUNT = "123456789012"
REGION = "us-east-1"
UNZIP_FAILED = "Could not unzip uploaded file. Please check your file, then try to upload again."
FILE, EXEC, DIR, LINK = 0o100644, 0o100755, 0o40755, 0o120777


def make_zip(*entries: tuple[str, bytes | str, int]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


def content(data: bytes) -> dict[str, Any]:
    return {"Content": {"ZipFile": base64.b64encode(data).decode()}}


class Layers:
    """A LayerService over a code store and a database in a temporary directory."""

    def __init__(self, root: Path, *, max_unzipped: int | None = None, code_limit: int | None = None) -> None:
        self.root = root
        self.code = FileCodeStore(root / "code", **({"max_unzipped": code_limit} if code_limit else {}))
        self.store = SqlLayerStore(sqlite_engine(root / "shoal.db"))
        self.function_code: set[str] = set()
        extra = {"max_unzipped": max_unzipped} if max_unzipped else {}
        self.service = LayerService(
            self.store,
            self.code,
            REGION,
            root / "code" / "opt",
            function_code_in_use=self.function_code.__contains__,
            **extra,
        )

    def publish(self, data: bytes, name: str = "lib", **body: Any) -> ResolvedLayer:
        record = asyncio.run(self.service.publish(ACCOUNT, name, {**content(data), **body}))
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}:{record.version}"
        [resolved] = self.service.resolve(ACCOUNT, [arn])
        return resolved

    def zips(self) -> list[str]:
        return sorted(p.name for p in (self.root / "code" / "zips").iterdir())

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def layers(tmp_path: Path) -> Iterator[Layers]:
    ls = Layers(tmp_path)
    yield ls
    ls.close()


def arn(name: str, version: int, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:lambda:{region}:{account}:layer:{name}:{version}"


# ---- /opt trees -------------------------------------------------------------------------------------------

BASE = make_zip(
    ("python/", b"", DIR),
    ("python/common.py", "WHO = 'base'\n", FILE),
    ("python/only_base.py", "X = 1\n", FILE),
    ("python/alias.py", "common.py", LINK),
    ("python/pkg/__init__.py", "", FILE),
    ("bin/tool", "#!/bin/sh\necho tool\n", EXEC),
    ("data", "python", LINK),  # a link to a directory: later layers must not write through it
)
OVER = make_zip(
    ("python/common.py", "WHO = 'over'\n", FILE),
    ("python/only_base.py/", b"", DIR),  # a file becomes a directory
    ("python/only_base.py/inner.txt", "inner", FILE),
    ("python/pkg", "now a file", FILE),  # a directory becomes a file
    ("data/x.txt", "x", FILE),  # a link becomes a directory
    ("lib/libover.so", "so", FILE),
)


def test_opt_tree_lays_layers_over_each_other_in_order(layers: Layers) -> None:
    base, over = layers.publish(BASE, "base"), layers.publish(OVER, "over")
    opt = layers.service.opt_tree([base, over])
    assert opt is not None and opt.parent == layers.root / "code" / "opt"
    assert (opt / "python/common.py").read_text() == "WHO = 'over'\n"
    assert (opt / "python/only_base.py/inner.txt").read_text() == "inner"
    assert (opt / "python/pkg").read_text() == "now a file"
    assert os.readlink(opt / "python/alias.py") == "common.py"  # links are copied as links
    assert (opt / "python/alias.py").read_text() == "WHO = 'over'\n"
    assert (opt / "data").is_dir() and not (opt / "data").is_symlink()
    assert sorted(p.name for p in (opt / "data").iterdir()) == ["x.txt"]
    assert not (opt / "python/x.txt").exists()  # nothing was written through base's link
    assert (opt / "lib/libover.so").read_text() == "so"
    assert os.access(opt / "bin/tool", os.X_OK) and (opt / "bin/tool").stat().st_mode & 0o111
    # the other order: base wins
    reverse = layers.service.opt_tree([over, base])
    assert reverse is not None and reverse != opt
    assert (reverse / "python/common.py").read_text() == "WHO = 'base'\n"
    assert (reverse / "python/only_base.py").is_file()
    assert (reverse / "python/pkg/__init__.py").is_file()
    assert (reverse / "data").is_symlink()
    # the extracted layer trees themselves are untouched
    assert (layers.code.task_root(base.sha_hex) / "python/common.py").read_text() == "WHO = 'base'\n"


def test_opt_tree_is_read_only_shared_and_built_once(layers: Layers) -> None:
    base, over = layers.publish(BASE, "base"), layers.publish(OVER, "over")
    opt = layers.service.opt_tree([base, over])
    assert opt is not None
    for path in [opt, *opt.rglob("*")]:
        mode = os.lstat(path).st_mode
        if not stat.S_ISLNK(mode):
            assert mode & 0o222 == 0, path  # nothing writable, directories included
            assert mode & 0o444 == 0o444, path  # readable by the environment's own uid
    merged = opt / "python/common.py"
    in_layer = layers.code.task_root(over.sha_hex) / "python/common.py"
    assert merged.stat().st_ino == in_layer.stat().st_ino  # a hard link, not a copy
    inode = opt.stat().st_ino
    assert layers.service.opt_tree([base, over]) == opt and opt.stat().st_ino == inode
    # cached across service instances (a restart): the same directory
    again = LayerService(layers.store, layers.code, REGION, layers.root / "code" / "opt")
    assert again.opt_tree([base, over]) == opt
    assert [p.name for p in (layers.root / "code" / "opt").iterdir()] == [opt.name]  # no staging left


def test_opt_tree_for_one_layer_is_its_extracted_tree_and_none_for_none(layers: Layers) -> None:
    base = layers.publish(BASE, "base")
    assert layers.service.opt_tree([base]) == layers.code.task_root(base.sha_hex)
    assert layers.service.opt_tree([]) is None


def test_opt_tree_rebuilds_a_layer_tree_that_went_missing(layers: Layers) -> None:
    base, over = layers.publish(BASE, "base"), layers.publish(OVER, "over")
    remove_tree(layers.code.task_root(base.sha_hex))
    opt = layers.service.opt_tree([base, over])
    assert opt is not None and (opt / "bin/tool").is_file()


def test_opt_tree_refuses_layers_over_the_limit_and_leaves_nothing(tmp_path: Path) -> None:
    ls = Layers(tmp_path, max_unzipped=1500)
    try:
        one = ls.publish(make_zip(("a.bin", b"a" * 900, FILE)), "one")
        two = ls.publish(make_zip(("b.bin", b"b" * 900, FILE)), "two")
        same_path = ls.publish(make_zip(("a.bin", b"c" * 900, FILE)), "same")
        with pytest.raises(InvalidParameterValueException) as ei:
            ls.service.opt_tree([one, two])
        assert ei.value.message == "Layers consume more than the available size of 1500 bytes"
        assert list((tmp_path / "code" / "opt").iterdir()) == []
        opt = ls.service.opt_tree([one, same_path])  # the later file replaces the earlier: 900 bytes
        assert opt is not None and (opt / "a.bin").read_bytes() == b"c" * 900
    finally:
        ls.close()


# ---- publishing refuses hostile zips ----------------------------------------------------------------------


def _corrupt() -> bytes:
    data = bytearray(make_zip(("a.txt", b"hello " * 1000, FILE)))
    at = data.index(b"a.txt") + len(b"a.txt") + 10  # inside the deflated data: the directory reads fine
    data[at : at + 8] = b"\xff" * 8
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            make_zip(("../evil.py", "x", FILE)),
            f"{UNZIP_FAILED} The entry '../evil.py' points outside the package.",
        ),
        (
            make_zip(("/etc/evil", "x", FILE)),
            f"{UNZIP_FAILED} The entry '/etc/evil' points outside the package.",
        ),
        (
            make_zip(("python/up", "../../etc", LINK)),
            f"{UNZIP_FAILED} The symbolic link 'python/up' points outside the package.",
        ),
        (
            make_zip(("python", "/etc", LINK), ("python/x.py", "x", FILE)),
            f"{UNZIP_FAILED} The symbolic link 'python' points outside the package.",
        ),
        (b"this is not a zip", UNZIP_FAILED),
        (_corrupt(), UNZIP_FAILED),  # only fails when extracted: still refused at publish
    ],
    ids=["dotdot", "absolute", "link-out", "write-through-link", "not-a-zip", "corrupt-data"],
)
def test_publish_refuses_hostile_zips_and_keeps_nothing(layers: Layers, data: bytes, message: str) -> None:
    with pytest.raises(InvalidParameterValueException) as ei:
        asyncio.run(layers.service.publish(ACCOUNT, "evil", content(data)))
    assert ei.value.message == message
    assert layers.store.versions(ACCOUNT) == []
    assert layers.store.next_version(ACCOUNT, "evil") == 1  # a refused publish takes no number
    assert layers.zips() == []
    assert [p.name for p in (layers.root / "code" / "tree").iterdir()] == []


def test_refused_publish_keeps_a_zip_that_a_function_uses(layers: Layers) -> None:
    data = _corrupt()
    sha = layers.code.put(data).sha256_hex
    layers.function_code.add(sha)
    with pytest.raises(InvalidParameterValueException):
        asyncio.run(layers.service.publish(ACCOUNT, "evil", content(data)))
    assert layers.zips() == [f"{sha}.zip"]


def test_publish_refuses_a_zip_bomb(tmp_path: Path) -> None:
    ls = Layers(tmp_path, code_limit=10_000)
    try:
        bomb = make_zip(("zeros.bin", bytes(20_000), FILE))
        with pytest.raises(InvalidParameterValueException) as ei:
            asyncio.run(ls.service.publish(ACCOUNT, "bomb", content(bomb)))
        assert ei.value.message == "Unzipped size must be smaller than 10000 bytes"
        assert ls.zips() == []
    finally:
        ls.close()


def test_publish_validation(layers: Layers) -> None:
    def publish(name: str = "lib", **body: Any) -> Any:
        return asyncio.run(layers.service.publish(ACCOUNT, name, body))

    with pytest.raises(NotImplementedException, match=r"Content\.S3Bucket"):
        publish(Content={"S3Bucket": "b", "S3Key": "k.zip"})
    with pytest.raises(InvalidParameterValueException, match=r"^Missing Content$"):
        publish(Content={})
    with pytest.raises(ValidationException) as ei:
        publish(name="bad name!", Content=None, Description="d" * 257, CompatibleArchitectures=["sparc"])
    assert ei.value.message.startswith("4 validation errors detected: ")
    assert "Value 'bad name!' at 'layerName' failed to satisfy constraint" in ei.value.message
    assert "Value null at 'content' failed to satisfy constraint: Member must not be null" in ei.value.message
    assert (
        "at 'description' failed to satisfy constraint: Member must have length less than or equal to 256"
        in (ei.value.message)
    )
    assert (
        "Value '[sparc]' at 'compatibleArchitectures' failed to satisfy constraint: Member must satisfy "
        "constraint: [Member must satisfy enum value set: [x86_64, arm64]]"
    ) in ei.value.message
    assert layers.store.versions(ACCOUNT) == []


def test_published_sizes(layers: Layers) -> None:
    data = make_zip(("python/m.py", "x" * 1000, FILE), ("python/l.py", "m.py", LINK))
    layer = layers.publish(data)
    assert layer.code_size == len(data)
    assert layer.unzipped_size == 1000 + len("m.py")
    assert layers.service.package_unzipped_size(layer.sha_hex) == 1004


# ---- a function's Layers ----------------------------------------------------------------------------------


def test_resolve_in_order_with_canonical_arns(layers: Layers) -> None:
    a, b = layers.publish(BASE, "a"), layers.publish(OVER, "b")
    got = layers.service.resolve(ACCOUNT, [arn("b", 1), arn("a", 1)])
    assert got == [b, a]
    assert layers.service.resolve(ACCOUNT, []) == []
    assert layers.service.resolve(ACCOUNT, None) == []


def test_resolve_refusals_in_aws_words(layers: Layers) -> None:
    for name in ("a", "a", "b", "c", "d", "e", "f"):
        layers.publish(BASE, name)

    def refused(arns: Any) -> str:
        with pytest.raises((InvalidParameterValueException, ValidationException)) as ei:
            layers.service.resolve(ACCOUNT, arns)
        return f"{ei.value.code}: {ei.value.message}"

    six = [arn(n, 1) for n in "abcdef"]
    assert refused(six) == "InvalidParameterValueException: Cannot reference more than 5 layers."
    assert refused([arn("a", 1), "arn:aws:lambda:us-east-1:123456789012:layer:a"]).startswith(
        "ValidationException: 1 validation error detected: Value "
        "'[arn:aws:lambda:us-east-1:123456789012:layer:a:1, arn:aws:lambda:us-east-1:123456789012:layer:a]' "
        "at 'layers' failed to satisfy constraint: Member must satisfy constraint: [Member must have length "
        "less than or equal to 140, "
    )
    assert refused([arn("a", 9)]) == (
        f"InvalidParameterValueException: Layer version {arn('a', 9)} does not exist."
    )
    with pytest.raises(AccessDeniedException) as denial:  # another account's: not granted (spec §1.2)
        layers.service.resolve(ACCOUNT, [arn("a", 1, account="210987654321")])
    assert denial.value.message == denied(
        "lambda:GetLayerVersion", arn("a", 1, account="210987654321"), caller=ACCOUNT
    )
    assert refused([arn("a", 1, region="eu-west-1")]) == (
        "InvalidParameterValueException: Layers are not in the same region as the function. "
        "Layers are expected to be in region us-east-1."
    )
    assert refused([arn("b", 1), arn("a", 1), arn("a", 2)]) == (
        "InvalidParameterValueException: Two different versions of the same layer are not allowed to be "
        f"referenced in the same function. {arn('a', 1)} and {arn('a', 2)} are versions of the same layer."
    )
    assert refused([arn("a", 2), arn("a", 2)]).endswith(
        f"{arn('a', 2)} and {arn('a', 2)} are versions of the same layer."
    )
    assert refused("not-a-list").startswith("InvalidParameterValueException: Layers must be a list")


def test_deleted_version_stays_usable_only_where_already_referenced(layers: Layers) -> None:
    kept = layers.publish(BASE, "lib")
    asyncio.run(layers.service.delete(ACCOUNT, "lib", 1))
    with pytest.raises(InvalidParameterValueException, match="does not exist"):
        layers.service.resolve(ACCOUNT, [arn("lib", 1)])
    assert layers.service.resolve(ACCOUNT, [arn("lib", 1)], already={arn("lib", 1)}) == [kept]
    assert layers.service.opt_tree([kept]) is not None  # and its zip is still there
    assert layers.service.code_in_use(kept.sha_hex)
    assert layers.publish(BASE, "lib").arn == arn("lib", 2)  # and its number is not reused


def test_function_and_layers_share_the_250_mb_limit(layers: Layers) -> None:
    layer = layers.publish(make_zip(("python/big.py", "x" * 1000, FILE)))
    check_total_unzipped(262_144_000 - 1000, [layer])
    with pytest.raises(InvalidParameterValueException) as ei:
        check_total_unzipped(262_144_000 - 999, [layer])
    assert ei.value.message == (
        "Function code combined with layers exceeds the maximum allowed size of 262144000 bytes. "
        "The actual size is 262144001 bytes."
    )


# ---- /opt inside a function's sandbox ---------------------------------------------------------------------

PY = f"python{sys.version_info[0]}.{sys.version_info[1]}"
PROBE = """
import json, os, sys
sys.path.insert(0, "/var/runtime")
import bootstrap
bootstrap._setup_sys_path("/var/task")
import fromopt, fromsite
out = {"fromopt": fromopt.WHO, "fromsite": fromsite.WHO, "uid": os.getuid(),
        "path": [p for p in sys.path if p.startswith("/opt")]}
try:
    open("/opt/python/evil.py", "w")
    out["write"] = "allowed"
except OSError as exc:
    out["write"] = exc.errno
print(json.dumps(out))
"""


async def _run_sandboxed(backend: NamespaceBackend, tmp: Path, opt: Path) -> str:
    code = tmp / "task"
    code.mkdir()
    prefix = Path(os.path.realpath(sys.executable)).parent.parent
    spec = SandboxSpec(
        env_id=uuid.uuid4().hex,
        argv=[os.path.realpath(sys.executable), "-I", "-S", "-c", PROBE],
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        code_dir=code,
        work_dir=tmp / "env",
        extra_ro_binds=((BOOTSTRAP_DIR, "/var/runtime"), (prefix, str(prefix)), (opt, "/opt")),
        uid=backend.new_identity(),
    )
    process = await backend.start(spec)
    try:
        await asyncio.wait_for(asyncio.shield(process.exited), 30)
        chunks = []
        while True:
            try:
                chunk = os.read(process.output_fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode()
    finally:
        await process.destroy()


@needs_namespace
def test_python_finds_layer_modules_under_opt_in_the_sandbox(layers: Layers, namespace_backend: Any) -> None:
    """The Python runtime's bootstrap puts /opt/python and /opt/python/lib/pythonX.Y/site-packages on
    sys.path (spec §4.1); the merged tree is readable by the environment's uid and read-only."""
    one = layers.publish(make_zip(("python/fromopt.py", "WHO = 'one'\n", FILE)), "one")
    two = layers.publish(
        make_zip(
            ("python/fromopt.py", "WHO = 'two'\n", FILE),
            (f"python/lib/{PY}/site-packages/fromsite.py", "WHO = 'site'\n", FILE),
        ),
        "two",
    )
    opt = layers.service.opt_tree([one, two])
    assert opt is not None
    output = asyncio.run(_run_sandboxed(namespace_backend, layers.root, opt))
    result = json.loads(output.strip().splitlines()[-1])
    assert result["fromopt"] == "two" and result["fromsite"] == "site"
    assert result["path"] == [f"/opt/python/lib/{PY}/site-packages", "/opt/python"]
    assert result["uid"] not in (0, os.getuid())
    assert result["write"] in (30, 13)  # EROFS (read-only bind), or EACCES


# ---- other accounts ---------------------------------------------------------------------------------------

OTHER = "444455556666"


def denied(action: str, resource: str, caller: str = OTHER) -> str:
    return (
        f"User: arn:aws:iam::{caller}:root is not authorized to perform: {action} on resource: {resource} "
        f"because no resource-based policy allows the {action} action"
    )


def test_another_account_uses_a_layer_only_when_its_policy_grants_it(layers: Layers) -> None:
    layers.publish(BASE, "shared")
    service, version = layers.service, arn("shared", 1)

    def get_as_other() -> Any:
        return asyncio.run(service.get_by_arn(OTHER, version))

    def grant(sid: str, principal: str, organization: str | None = None) -> None:
        body = {"StatementId": sid, "Action": "lambda:GetLayerVersion", "Principal": principal}
        if organization:
            body["OrganizationId"] = organization
        asyncio.run(service.add_permission(ACCOUNT, "shared", 1, body))

    for attempt in (
        get_as_other,
        lambda: asyncio.run(service.get(OTHER, layer_arn_of("shared"), 1)),
        lambda: service.resolve(OTHER, [version]),
    ):
        with pytest.raises(AccessDeniedException) as ei:
            attempt()
        assert ei.value.status == 403
        assert ei.value.message == denied("lambda:GetLayerVersion", version)
    grant("org-only", "*", "o-abcdefghij")  # no organizations here: grants nobody
    with pytest.raises(AccessDeniedException):
        get_as_other()
    grant("other", OTHER)
    assert get_as_other().version == 1
    [used] = service.resolve(OTHER, [version])
    assert used.arn == version
    asyncio.run(service.remove_permission(ACCOUNT, "shared", 1, "other"))
    with pytest.raises(AccessDeniedException):
        service.resolve(OTHER, [version])
    assert service.resolve(OTHER, [version], already={version}) == [used]  # a function that has it keeps it
    grant("everyone", "*")
    assert get_as_other().version == 1
    with pytest.raises(AccessDeniedException) as ei:  # a version that does not exist: the same refusal
        asyncio.run(service.get_by_arn(OTHER, arn("shared", 9)))
    assert ei.value.message == denied("lambda:GetLayerVersion", arn("shared", 9))


def test_only_the_owner_manages_a_layer(layers: Layers) -> None:
    layers.publish(BASE, "mine")
    service, name = layers.service, layer_arn_of("mine")
    asyncio.run(
        service.add_permission(
            ACCOUNT, "mine", 1, {"StatementId": "all", "Action": "lambda:GetLayerVersion", "Principal": "*"}
        )
    )
    body = {"StatementId": "x", "Action": "lambda:GetLayerVersion", "Principal": "*"}
    attempts = {
        "lambda:PublishLayerVersion": (lambda: service.publish(OTHER, name, content(BASE)), name),
        "lambda:ListLayerVersions": (lambda: service.list_versions(OTHER, name), name),
        "lambda:DeleteLayerVersion": (lambda: service.delete(OTHER, name, 1), arn("mine", 1)),
        "lambda:AddLayerVersionPermission": (
            lambda: service.add_permission(OTHER, name, 1, body),
            arn("mine", 1),
        ),
        "lambda:GetLayerVersionPolicy": (lambda: service.get_policy(OTHER, name, 1), arn("mine", 1)),
        "lambda:RemoveLayerVersionPermission": (
            lambda: service.remove_permission(OTHER, name, 1, "all"),
            arn("mine", 1),
        ),
    }
    for action, (attempt, resource) in attempts.items():
        with pytest.raises(AccessDeniedException) as ei:
            asyncio.run(attempt())
        assert ei.value.message == denied(action, resource)
    assert [r.version for r in layers.store.versions(ACCOUNT, "mine")] == [1]
    assert layers.store.versions(OTHER) == []
    # the other account's own layers of the same name are its own
    record = asyncio.run(service.publish(OTHER, "mine", content(OVER)))
    assert (record.account_id, record.version) == (OTHER, 1)
    assert asyncio.run(service.list_layers(ACCOUNT)).items[0].account_id == ACCOUNT


def layer_arn_of(name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:lambda:{REGION}:{account}:layer:{name}"

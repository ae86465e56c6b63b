"""Deployment packages an attacker (or a broken build) might upload, and unusual but legitimate layouts."""

from __future__ import annotations

import base64
import io
import json
import struct
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, WaiterError

from tests.e2e.conftest import (
    ROLE,
    RUNTIME,
    error_of,
    fixture_source,
    make_zip,
    raw_request,
    sha256_b64,
    unique_name,
)

UNZIP_FAILED = "Could not unzip uploaded file. Please check your file, then try to upload again."
TOO_BIG = "Unzipped size must be smaller than 262144000 bytes"
NOT_FOUND = "Function not found: arn:aws:lambda:us-east-1:123456789012:function:{}"
HANDLER_SOURCE = "def handler(event, context):\n    return 'ok'\n"
TAG = uuid.uuid4().hex[:10]


def zip_entries(entries: list[tuple[zipfile.ZipInfo | str, bytes | str]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, content in entries:
            zf.writestr(info, content)
    return buf.getvalue()


def symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.create_system = 3  # unix
    info.external_attr = (0o120777 << 16) & 0xFFFF0000
    return info


def raw_name_info(name: str) -> zipfile.ZipInfo:
    """A ZipInfo whose name is kept verbatim (zipfile normalises leading '/' and '..' only on extraction)."""
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.filename = name
    info.external_attr = 0o644 << 16
    return info


def create(client: Any, name: str, zip_bytes: bytes, handler: str = "app.handler") -> dict[str, Any]:
    return client.create_function(  # type: ignore[no-any-return]
        FunctionName=name, Runtime=RUNTIME, Role=ROLE, Handler=handler, Code={"ZipFile": zip_bytes}
    )


def assert_refused(client: Any, name: str, zip_bytes: bytes, message: str | None = None) -> str:
    with pytest.raises(ClientError) as ei:
        create(client, name, zip_bytes)
    status, code, got = error_of(ei.value)
    assert (status, code) == (400, "InvalidParameterValueException"), (status, code, got)
    if message is not None:
        assert got == message
    with pytest.raises(ClientError) as ei:
        client.get_function(FunctionName=name)
    assert error_of(ei.value) == (404, "ResourceNotFoundException", NOT_FOUND.format(name))
    return got


def no_file_named(root: Path, filename: str) -> bool:
    return not any(p.name == filename for p in root.rglob("*"))


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """One entry of 300 MB of zeros: about 300 KB deflated, over the 262144000-byte unzipped limit."""
    buf = io.BytesIO()
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("app.py", HANDLER_SOURCE)
        info = zipfile.ZipInfo("zeros.bin", date_time=(2024, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as fh:
            for _ in range(300):
                fh.write(chunk)
    return buf.getvalue()


def _lie_about_sizes(data: bytes, entry: str, fake_size: int) -> bytes:
    """Rewrite the declared uncompressed size of ``entry`` in both local and central headers."""
    out = bytearray(data)
    name = entry.encode()
    # local file header: signature PK\x03\x04, uncompressed size at offset 22
    pos = out.find(b"PK\x03\x04")
    while pos != -1:
        name_len = struct.unpack_from("<H", out, pos + 26)[0]
        if bytes(out[pos + 30 : pos + 30 + name_len]) == name:
            struct.pack_into("<I", out, pos + 22, fake_size)
        pos = out.find(b"PK\x03\x04", pos + 4)
    # central directory header: signature PK\x01\x02, uncompressed size at offset 24
    pos = out.find(b"PK\x01\x02")
    while pos != -1:
        name_len = struct.unpack_from("<H", out, pos + 28)[0]
        if bytes(out[pos + 46 : pos + 46 + name_len]) == name:
            struct.pack_into("<I", out, pos + 24, fake_size)
        pos = out.find(b"PK\x01\x02", pos + 4)
    return bytes(out)


# ---- refused packages -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [b"this is not a zip file at all", b"PK\x03\x04garbage-after-a-zip-signature" * 10, b"\x00" * 1024],
    ids=["text", "truncated-zip", "zeros"],
)
def test_not_a_zip(lambda_client: Any, cleanup_names: set[str], payload: bytes) -> None:
    name = unique_name("not-zip")
    cleanup_names.add(name)
    assert_refused(lambda_client, name, payload, UNZIP_FAILED)


def test_empty_zip_file_member(lambda_client: Any, endpoint: str, cleanup_names: set[str]) -> None:
    name = unique_name("empty-zip")
    cleanup_names.add(name)
    with pytest.raises(ClientError) as ei:
        create(lambda_client, name, b"")
    assert error_of(ei.value)[:2] == (400, "InvalidParameterValueException")
    resp = raw_request(
        endpoint,
        "POST",
        "/2015-03-31/functions",
        json_body={
            "FunctionName": name,
            "Runtime": RUNTIME,
            "Role": ROLE,
            "Handler": "app.handler",
            "Code": {"ZipFile": ""},
        },
    )
    assert resp.status_code == 400, resp.text
    assert resp.headers.get("x-amzn-ErrorType", "").split(":")[0] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as ei:
        lambda_client.get_function(FunctionName=name)
    assert error_of(ei.value)[0] == 404


def test_zipfile_not_base64(endpoint: str, lambda_client: Any, cleanup_names: set[str]) -> None:
    name = unique_name("not-b64")
    cleanup_names.add(name)
    resp = raw_request(
        endpoint,
        "POST",
        "/2015-03-31/functions",
        json_body={
            "FunctionName": name,
            "Runtime": RUNTIME,
            "Role": ROLE,
            "Handler": "app.handler",
            "Code": {"ZipFile": "%%% not base64 %%%"},
        },
    )
    assert resp.status_code == 400, resp.text
    with pytest.raises(ClientError) as ei:
        lambda_client.get_function(FunctionName=name)
    assert error_of(ei.value)[0] == 404


@pytest.mark.parametrize("depth", [1, 12])
def test_parent_traversal_entry(
    lambda_client: Any, data_dir: Path, cleanup_names: set[str], depth: int
) -> None:
    name = unique_name("traversal")
    cleanup_names.add(name)
    evil = f"evil-{TAG}-{depth}.py"
    target = "../" * depth + ("tmp/" if depth > 1 else "") + evil
    zip_bytes = zip_entries([("app.py", HANDLER_SOURCE), (raw_name_info(target), "print('pwned')\n")])
    assert_refused(lambda_client, name, zip_bytes)
    assert not Path("/tmp", evil).exists()
    assert no_file_named(data_dir.parent, evil)


def test_backslash_traversal_entry(lambda_client: Any, data_dir: Path, cleanup_names: set[str]) -> None:
    name = unique_name("backslash")
    cleanup_names.add(name)
    evil = f"evil-bs-{TAG}.py"
    zip_bytes = zip_entries([("app.py", HANDLER_SOURCE), (raw_name_info("..\\..\\" + evil), "x = 1\n")])
    try:
        create(lambda_client, name, zip_bytes)
    except ClientError as exc:
        assert error_of(exc)[:2] == (400, "InvalidParameterValueException")
    # accepted or not, nothing may land outside the package
    assert no_file_named(data_dir.parent.parent, evil)


def test_absolute_path_entry(lambda_client: Any, data_dir: Path, cleanup_names: set[str]) -> None:
    name = unique_name("absolute")
    cleanup_names.add(name)
    evil = f"abs-{TAG}.py"
    zip_bytes = zip_entries([("app.py", HANDLER_SOURCE), (raw_name_info(f"/tmp/{evil}"), "x = 1\n")])
    assert_refused(lambda_client, name, zip_bytes)
    assert not Path("/tmp", evil).exists()
    assert no_file_named(data_dir.parent, evil)


def test_symlink_to_etc_passwd(lambda_client: Any, cleanup_names: set[str]) -> None:
    name = unique_name("symlink-out")
    cleanup_names.add(name)
    zip_bytes = zip_entries([("app.py", HANDLER_SOURCE), (symlink_info("passwd.txt"), "/etc/passwd")])
    assert_refused(lambda_client, name, zip_bytes)


def test_write_through_symlinked_directory(
    lambda_client: Any, data_dir: Path, cleanup_names: set[str]
) -> None:
    name = unique_name("symlink-dir")
    cleanup_names.add(name)
    outside = Path("/tmp") / f"shoal-e2e-linkdir-{TAG}"
    zip_bytes = zip_entries(
        [
            ("app.py", HANDLER_SOURCE),
            (symlink_info("escape"), str(outside)),
            (raw_name_info("escape/planted.py"), "x = 1\n"),
        ]
    )
    assert_refused(lambda_client, name, zip_bytes)
    assert not (outside / "planted.py").exists()


def test_relative_symlink_escaping_package(lambda_client: Any, cleanup_names: set[str]) -> None:
    name = unique_name("symlink-rel")
    cleanup_names.add(name)
    zip_bytes = zip_entries(
        [("app.py", HANDLER_SOURCE), (symlink_info("up.txt"), "../../../../../../etc/passwd")]
    )
    assert_refused(lambda_client, name, zip_bytes)


def test_zip_bomb(lambda_client: Any, cleanup_names: set[str], zip_bomb: bytes) -> None:
    assert len(zip_bomb) < 2_000_000
    name = unique_name("bomb")
    cleanup_names.add(name)
    assert_refused(lambda_client, name, zip_bomb, TOO_BIG)


def test_zip_bomb_with_lying_headers(
    lambda_client: Any, data_dir: Path, cleanup_names: set[str], zip_bomb: bytes
) -> None:
    """Declared sizes say 10 bytes; the data inflates to 300 MB.

    Refused at CreateFunction, or accepted and then Failed (never Active), without writing the 300 MB.
    """
    liar = _lie_about_sizes(zip_bomb, "zeros.bin", 10)
    name = unique_name("bomb-liar")
    cleanup_names.add(name)
    try:
        create(lambda_client, name, liar)
    except ClientError as exc:
        status, code, message = error_of(exc)
        assert (status, code) == (400, "InvalidParameterValueException")
        assert message == TOO_BIG or message.startswith(UNZIP_FAILED), message
    else:
        with pytest.raises(WaiterError):
            lambda_client.get_waiter("function_active_v2").wait(
                FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
            )
        cfg = lambda_client.get_function_configuration(FunctionName=name)
        assert cfg["State"] == "Failed"
        assert cfg["StateReasonCode"] == "InvalidZipFileException"
    used = sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file() and not p.is_symlink())
    assert used < 200_000_000, f"the data dir holds {used} bytes after a refused zip bomb"


def test_update_code_with_hostile_zip_keeps_old_code(lambda_client: Any, make_function: Any) -> None:
    name = unique_name("update-hostile")
    created = make_function(name, {"app.py": HANDLER_SOURCE})
    for bad in (
        b"not a zip",
        zip_entries([("app.py", HANDLER_SOURCE), (raw_name_info(f"../../evil-upd-{TAG}.py"), "x = 1\n")]),
        zip_entries([("app.py", HANDLER_SOURCE), (symlink_info("p"), "/etc/passwd")]),
    ):
        with pytest.raises(ClientError) as ei:
            lambda_client.update_function_code(FunctionName=name, ZipFile=bad)
        assert error_of(ei.value)[:2] == (400, "InvalidParameterValueException")
    cfg = lambda_client.get_function_configuration(FunctionName=name)
    assert cfg["CodeSha256"] == created["CodeSha256"]
    assert cfg["LastUpdateStatus"] == "Successful"
    assert lambda_client.invoke(FunctionName=name)["Payload"].read() == b'"ok"'


# ---- unusual but legitimate layouts -----------------------------------------------------------------------


def _invoke(client: Any, name: str, event: Any = None) -> tuple[dict[str, Any], Any]:
    resp = client.invoke(FunctionName=name, Payload=json.dumps(event if event is not None else {}).encode())
    return resp, json.loads(resp["Payload"].read())


def test_package_in_subdirectory(lambda_client: Any, make_function: Any) -> None:
    name = unique_name("subpkg")
    files = {
        "pkg/__init__.py": "",
        "pkg/helper.py": "def greet():\n    return 'from helper'\n",
        "pkg/mod.py": "from pkg.helper import greet\n\ndef handler(event, context):\n    return greet()\n",
    }
    make_function(name, files, handler="pkg.mod.handler")
    resp, out = _invoke(lambda_client, name)
    assert "FunctionError" not in resp, out
    assert out == "from helper"


def test_slash_path_handler(lambda_client: Any, make_function: Any) -> None:
    name = unique_name("slash-handler")
    files = {
        "src/app.py": "import os\n\ndef handler(event, context):\n    return os.path.abspath(__file__)\n"
    }
    make_function(name, files, handler="src/app.handler")
    resp, out = _invoke(lambda_client, name)
    assert "FunctionError" not in resp, out
    assert out == "/var/task/src/app.py"


def test_explicit_directory_entries_and_data_files(lambda_client: Any, make_function: Any) -> None:
    """``zip -r`` style packages carry directory entries; data files are readable relative to /var/task."""
    name = unique_name("dir-entries")
    dir_info = zipfile.ZipInfo("data/", date_time=(2024, 1, 1, 0, 0, 0))
    dir_info.external_attr = (0o40755 << 16) | 0x10
    zip_bytes = zip_entries(
        [
            (dir_info, b""),
            ("data/config.json", json.dumps({"answer": 42})),
            (
                "app.py",
                "import json\n\ndef handler(event, context):\n"
                "    with open('data/config.json') as fh:\n        return json.load(fh)\n",
            ),
        ]
    )
    make_function(name, zip_bytes)
    resp, out = _invoke(lambda_client, name)
    assert "FunctionError" not in resp, out
    assert out == {"answer": 42}


def test_symlink_inside_package_works(lambda_client: Any, make_function: Any) -> None:
    name = unique_name("symlink-in")
    zip_bytes = zip_entries([("real.py", HANDLER_SOURCE), (symlink_info("app.py"), "real.py")])
    make_function(name, zip_bytes)
    resp, out = _invoke(lambda_client, name)
    assert "FunctionError" not in resp, out
    assert out == "ok"


def test_code_is_read_only(lambda_client: Any, make_function: Any) -> None:
    """§4.2: /var/task is read-only; /tmp is writable."""
    name = unique_name("read-only")
    source = (
        "def handler(event, context):\n"
        "    try:\n"
        "        open('/var/task/new.txt', 'w').write('x')\n"
        "        task = 'writable'\n"
        "    except OSError:\n"
        "        task = 'read-only'\n"
        "    open('/tmp/ok.txt', 'w').write('x')\n"
        "    return task\n"
    )
    make_function(name, {"app.py": source})
    resp, out = _invoke(lambda_client, name)
    assert "FunctionError" not in resp, out
    assert out == "read-only"


def test_codesha_of_hostile_free_large_package(lambda_client: Any, make_function: Any) -> None:
    """A legitimate package with many files and a few MB of data deploys and reports the right hash."""
    name = unique_name("many-files")
    files: dict[str, str | bytes] = {f"lib/mod{i}.py": f"VALUE = {i}\n" for i in range(300)}
    files["lib/__init__.py"] = ""
    files["blob.bin"] = base64.b64encode(bytes(range(256)) * 8192)
    files["app.py"] = "from lib import mod299\n\ndef handler(event, context):\n    return mod299.VALUE\n"
    zip_bytes = make_zip(files)
    created = make_function(name, zip_bytes)
    assert created["CodeSha256"] == sha256_b64(zip_bytes)
    assert created["CodeSize"] == len(zip_bytes)
    _, out = _invoke(lambda_client, name)
    assert out == 299


def test_probe_fixture_still_deploys(lambda_client: Any, make_function: Any) -> None:
    """Sanity check that the shared fixture source deploys from a nested path too."""
    name = unique_name("nested-probe")
    make_function(name, {"handlers/probe.py": fixture_source("probe.py")}, handler="handlers/probe.handler")
    _, out = _invoke(lambda_client, name, {"action": "info"})
    assert out["cwd"] == "/var/task"
    assert out["env"]["_HANDLER"] == "handlers/probe.handler"

"""Custom runtimes (provided, provided.al2, provided.al2023) through boto3 against ``shoal server``.

The function ships its own ``bootstrap``: a shell script with curl, a Go binary built here, and AWS's Python
runtime interface client (awslambdaric). Spec §2.4 (error shapes), §4.1-4.2, §5.2.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import ShoalServer, unique_name

_spec = importlib.util.spec_from_file_location(
    "custom_builders", Path(__file__).parents[1] / "fixtures" / "custom" / "builders.py"
)
assert _spec is not None and _spec.loader is not None
builders = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(builders)

needs_curl = pytest.mark.skipif(
    shutil.which("curl") is None, reason="the shell-script runtime needs curl: apt-get install -y curl"
)
SHELL = {"bootstrap": (builders.SHELL_BOOTSTRAP.read_bytes(), 0o755)}
REPORT_RE = re.compile(r"REPORT RequestId: (\S+)\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\t.*")


def invoke(client: Any, name: str, event: Any, **kw: Any) -> tuple[dict[str, Any], Any, str]:
    """(response, decoded payload, tail log) of a RequestResponse invoke with LogType=Tail."""
    resp = client.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail", **kw)
    payload = json.loads(resp["Payload"].read())
    log = base64.b64decode(resp["LogResult"]).decode("utf-8", "replace")
    return resp, payload, log


def rid_of(resp: dict[str, Any]) -> str:
    return str(resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"])


def assert_platform_lines(log: str, rid: str, *, cold: bool) -> None:
    lines = log.rstrip("\n").split("\n")
    start = lines.index(f"START RequestId: {rid} Version: $LATEST")
    assert start == 0 or (cold and lines[0].startswith("INIT_START ")), log  # a cold tail may open with INIT
    assert f"END RequestId: {rid}" in lines, log
    assert REPORT_RE.fullmatch(lines[-1]) and rid in lines[-1], log
    assert ("Init Duration" in lines[-1]) == cold, log


def custom_function(
    make_function: Any, files: dict[str, Any], runtime: str = "provided.al2023", **kw: Any
) -> str:
    name = unique_name("custom")
    kw.setdefault("Handler", "function.handler")
    handler = kw.pop("Handler")
    make_function(name, builders.make_zip(files), handler, runtime, **kw)
    return name


# ---- a shell script with curl ------------------------------------------------------------------------------


@needs_curl
def test_shell_runtime(lambda_client: Any, make_function: Any) -> None:
    name = custom_function(
        make_function, SHELL, Environment={"Variables": {"CUSTOM_VAR": "e2e"}}, MemorySize=256, Timeout=7
    )
    config = lambda_client.get_function(FunctionName=name)["Configuration"]
    assert (config["Runtime"], config["Handler"]) == ("provided.al2023", "function.handler")

    resp, out, log = invoke(lambda_client, name, {"hello": "world"})
    rid = rid_of(resp)
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp
    assert resp["ExecutedVersion"] == "$LATEST"
    assert out["echo"] == {"hello": "world"} and out["count"] == 1
    assert out["requestId"] == rid
    assert out["invokedArn"].endswith(f":function:{name}")
    assert (out["handler"], out["functionName"], out["memory"], out["version"]) == (
        "function.handler",
        name,
        "256",
        "$LATEST",
    )
    assert out["logGroup"] == f"/aws/lambda/{name}"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", out["logStream"])
    assert out["executionEnv"] == "<unset>"  # spec §4.1: not set for provided* runtimes
    assert out["custom"] == "e2e"
    assert f"invocation 1 {rid}" in log.split("\n")
    assert_platform_lines(log, rid, cold=True)

    resp, out, log = invoke(lambda_client, name, {"again": True})
    assert out["count"] == 2  # the same bootstrap process: warm reuse
    assert_platform_lines(log, rid_of(resp), cold=False)

    resp, out, log = invoke(lambda_client, name, {"fail": True})
    assert resp["FunctionError"] == "Unhandled"
    assert out == {"errorMessage": "shell says no", "errorType": "ShellError", "stackTrace": ["bootstrap:42"]}
    assert_platform_lines(log, rid_of(resp), cold=False)


@needs_curl
def test_shell_runtime_crash_and_timeout(lambda_client: Any, make_function: Any) -> None:
    name = custom_function(make_function, SHELL, Timeout=1)
    resp, out, log = invoke(lambda_client, name, {"exit": 3})
    rid = rid_of(resp)
    assert resp["FunctionError"] == "Unhandled"
    assert out == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: exit status 3",
    }
    assert "exiting with 3" in log
    assert log.rstrip("\n").endswith("Status: error\tError Type: Runtime.ExitError")

    resp, out, log = invoke(lambda_client, name, {"sleep": 30})
    rid = rid_of(resp)
    assert resp["FunctionError"] == "Unhandled"
    assert out == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {rid} Error: Task timed out after 1.00 seconds",
    }
    assert log.rstrip("\n").endswith("Status: timeout")


# ---- a bootstrap that cannot run -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("runtime", "files"),
    [
        pytest.param("provided", {"function.sh": "echo hi\n"}, id="missing"),
        pytest.param("provided.al2", {"bootstrap": ("#!/bin/sh\necho hi\n", 0o644)}, id="not-executable"),
    ],
)
def test_unusable_bootstrap_is_invalid_entrypoint(
    lambda_client: Any, make_function: Any, shoal_server: ShoalServer, runtime: str, files: dict[str, Any]
) -> None:
    name = custom_function(make_function, files, runtime)
    resp, out, log = invoke(lambda_client, name, {})
    rid = rid_of(resp)
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    assert out["errorType"] == "Runtime.InvalidEntrypoint"
    message = re.fullmatch(
        rf"RequestId: {rid} Error: Couldn't find valid bootstrap\(s\): \[(\S+)/bootstrap /opt/bootstrap\]",
        out["errorMessage"],
    )
    assert message, out
    if "sandbox: namespace" in shoal_server.log_text():
        assert message[1] == "/var/task"  # AWS's text exactly
    assert log.rstrip("\n").endswith("Status: error\tError Type: Runtime.InvalidEntrypoint")


# ---- Go, built here: one static binary named bootstrap -----------------------------------------------------


@pytest.fixture(scope="module")
def go_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    try:
        return bytes(builders.go_binary(tmp_path_factory.getbasetemp() / "custom-go").read_bytes())
    except builders.Unavailable as exc:
        pytest.skip(str(exc))


def test_go_runtime(lambda_client: Any, make_function: Any, go_bootstrap: bytes) -> None:
    name = custom_function(
        make_function, {"bootstrap": (go_bootstrap, 0o755)}, "provided.al2", Handler="bootstrap"
    )
    resp, out, log = invoke(lambda_client, name, {"n": 1})
    rid = rid_of(resp)
    assert "FunctionError" not in resp
    assert out["echo"] == {"n": 1} and out["requestId"] == rid and out["functionName"] == name
    assert out["handler"] == "bootstrap" and out["memoryLimitInMB"] == 128 and out["hasExecutionEnv"] is False
    assert 0 < out["remainingMs"] <= 3000
    assert re.search(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d logged through the log package$", log, re.M), log
    assert_platform_lines(log, rid, cold=True)

    resp, out, log = invoke(lambda_client, name, {"fail": True})
    assert resp["FunctionError"] == "Unhandled"
    assert out == {"errorMessage": "something went wrong!", "errorType": "errorString"}  # spec §2.4, Go
    resp, out, _ = invoke(lambda_client, name, {})
    assert out["count"] == 3


# ---- AWS's Python runtime interface client ----------------------------------------------------------------


@pytest.fixture(scope="module")
def ric_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    tree, _python = builders.awslambdaric_tree(tmp_path_factory.getbasetemp() / "custom-awslambdaric")
    return bytes(builders.make_zip(builders.tree_files(tree)))


def test_awslambdaric_runtime(lambda_client: Any, make_function: Any, ric_zip: bytes) -> None:
    name = unique_name("custom-ric")
    make_function(name, ric_zip, "app.handler", "provided.al2023", Timeout=2)
    client_context = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    resp, out, log = invoke(lambda_client, name, {"n": 1}, ClientContext=client_context)
    rid = rid_of(resp)
    assert "FunctionError" not in resp
    assert out["requestId"] == rid and out["count"] == 1
    assert out["functionName"] == name and out["memoryLimitInMB"] == "128"
    assert out["invokedFunctionArn"].endswith(f":function:{name}")
    assert out["clientContext"] == {"k": "v"}
    assert out["executionEnv"] is None
    assert 0 < out["remainingMs"] <= 2000
    lines = log.split("\n")
    assert "print line 1" in lines
    assert any(re.fullmatch(rf"\[INFO\]\t\S+Z\t{rid}\tinfo line 1", line) for line in lines), log
    assert_platform_lines(log, rid, cold=True)

    resp, out, log = invoke(lambda_client, name, {"fail": True})
    rid = rid_of(resp)
    assert resp["FunctionError"] == "Unhandled"
    assert (out["errorMessage"], out["errorType"], out["requestId"]) == ("ric says no", "ValueError", rid)
    assert len(out["stackTrace"]) == 1 and out["stackTrace"][0].startswith('  File "')
    assert "[ERROR] ValueError: ric says no" in log

    resp, out, _ = invoke(lambda_client, name, {})
    assert out["count"] == 3  # module state survived: warm reuse

    resp, out, log = invoke(lambda_client, name, {"sleep": 30})
    assert out == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {rid_of(resp)} Error: Task timed out after 2.00 seconds",
    }

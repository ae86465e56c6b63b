"""Invoke at the wire: payloads, headers, tail logs, environments, the function's view, errors.

Spec §2, §4, §5.2.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import (
    ACCOUNT,
    REGION,
    ROLE,
    RUNTIME,
    error_of,
    fixture_source,
    function_arn,
    make_zip,
    raw_request,
    unique_name,
    wait_active,
    wait_updated,
)

PROBE = {"app.py": fixture_source("probe.py")}
INVOKE_TOO_LARGE = "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
RESPONSE_TOO_LARGE = {
    "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
    "errorType": "Function.ResponseSizeTooLarge",
}
PENDING_CONFLICT = (
    "The operation cannot be performed at this time. The function is currently in the following "
    "state: Pending"
)
REPORT_RE = re.compile(
    r"REPORT RequestId: (?P<id>\S+)\tDuration: (?P<duration>\d+\.\d{2}) ms"
    r"\tBilled Duration: (?P<billed>\d+) ms"
    r"\tMemory Size: (?P<memory>\d+) MB\tMax Memory Used: (?P<used>\d+) MB\t"
    r"(?:Init Duration: (?P<init>\d+\.\d{2}) ms\t)?"
    r"(?:Status: (?P<status>\w+)(?:\tError Type: (?P<error_type>\S+))?\t?)?"
)
LOG_STREAM_RE = re.compile(r"(?P<date>\d{4}/\d{2}/\d{2})/\[\$LATEST\][0-9a-f]{32}")


def invoke(client: Any, name: str, event: Any = None, **kw: Any) -> tuple[dict[str, Any], bytes]:
    payload = kw.pop("Payload", None)
    if payload is None and event is not None:
        payload = json.dumps(event).encode()
    if payload is not None:
        kw["Payload"] = payload
    resp = client.invoke(FunctionName=name, **kw)
    return resp, resp["Payload"].read()


def tail(resp: dict[str, Any]) -> str:
    assert "LogResult" in resp, "LogResult missing although LogType=Tail"
    return base64.b64decode(resp["LogResult"]).decode("utf-8", "replace")


def request_id(resp: dict[str, Any]) -> str:
    rid = resp["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-requestid")
    assert rid
    return str(rid)


def report(log: str, rid: str) -> re.Match[str]:
    lines = [ln for ln in log.split("\n") if ln.startswith("REPORT ")]
    assert lines, log
    m = REPORT_RE.fullmatch(lines[-1])
    assert m, repr(lines[-1])
    assert m["id"] == rid
    return m


def assert_report(log: str, rid: str, memory: int = 128, *, cold: bool) -> re.Match[str]:
    m = report(log, rid)
    assert int(m["memory"]) == memory
    assert 1 <= int(m["used"]) <= memory
    duration = float(m["duration"])
    billed = int(m["billed"])
    if cold:
        assert m["init"] is not None, f"Init Duration missing on a cold start: {m[0]!r}"
        expected = math.ceil(duration + float(m["init"]))
    else:
        assert m["init"] is None, f"Init Duration on a warm invoke: {m[0]!r}"
        expected = math.ceil(duration)
    assert abs(billed - expected) <= 1, (billed, expected, m[0])
    return m


def probe(make_function: Any, prefix: str, **kw: Any) -> str:
    name = unique_name(prefix)
    make_function(name, PROBE, **kw)
    return name


@pytest.fixture(scope="module")
def shared_probe(lambda_client: Any, cleanup_names: set[str]) -> str:
    """One warm probe function for read-only tests of this module."""
    name = unique_name("shared-probe")
    cleanup_names.add(name)
    lambda_client.create_function(
        FunctionName=name,
        Runtime=RUNTIME,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip(PROBE)},
        MemorySize=256,
        Timeout=10,
        Environment={"Variables": {"USER_VAR": "user-value", "OTHER": "x=y"}},
    )
    wait_active(lambda_client, name)
    return name


# ---- results and headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "nested": {"b": [1, 2, None]}},
        None,
        "hello",
        42,
        [1, "two"],
        {"unicode": "h\u00e9llo \u2713"},
    ],
)
def test_result_payload(lambda_client: Any, shared_probe: str, value: Any) -> None:
    resp, body = invoke(lambda_client, shared_probe, {"action": "return", "value": value})
    assert resp["StatusCode"] == 200
    assert "FunctionError" not in resp
    assert json.loads(body) == value
    if value is None:
        assert body == b"null"
    if value == "hello":
        assert body == b'"hello"'


def test_request_id_and_executed_version(lambda_client: Any, shared_probe: str) -> None:
    resp, body = invoke(lambda_client, shared_probe, {"action": "info"})
    out = json.loads(body)
    assert request_id(resp) == out["context"]["aws_request_id"]
    assert resp["ExecutedVersion"] == "$LATEST"
    assert "LogResult" not in resp  # only with LogType=Tail
    resp2, body2 = invoke(lambda_client, shared_probe, {"action": "info"})
    assert request_id(resp2) != request_id(resp)
    assert json.loads(body2)["context"]["aws_request_id"] == request_id(resp2)


def test_tail_log_lines_cold_then_warm(lambda_client: Any, make_function: Any) -> None:
    name = probe(make_function, "tail", MemorySize=192)
    resp, _ = invoke(lambda_client, name, {"action": "print", "text": "hello-from-function"}, LogType="Tail")
    rid = request_id(resp)
    log = tail(resp)
    lines = log.split("\n")
    start = lines.index(f"START RequestId: {rid} Version: $LATEST")
    assert all(ln.startswith("INIT_START ") for ln in lines[:start]), log  # only the init may precede START
    assert f"END RequestId: {rid}" in lines
    assert (
        lines.index(f"END RequestId: {rid}")
        < [i for i, ln in enumerate(lines) if ln.startswith("REPORT ")][-1]
    )
    assert "line 0 hello-from-function" in lines
    assert log.endswith("\t\n") or log.endswith("\t"), repr(log[-40:])  # REPORT ends with a TAB
    assert_report(log, rid, 192, cold=True)

    resp2, _ = invoke(lambda_client, name, {"action": "return", "value": 1}, LogType="Tail")
    log2 = tail(resp2)
    assert log2.startswith(f"START RequestId: {request_id(resp2)} Version: $LATEST\n")
    m = assert_report(log2, request_id(resp2), 192, cold=False)
    assert m["status"] is None
    assert "hello-from-function" not in log2  # only this invocation's output


def test_tail_is_last_4kb(lambda_client: Any, shared_probe: str) -> None:
    resp, body = invoke(
        lambda_client, shared_probe, {"action": "print", "lines": 300, "text": "z" * 90}, LogType="Tail"
    )
    assert json.loads(body) == "printed"
    raw = base64.b64decode(resp["LogResult"])
    assert 3800 < len(raw) <= 4096, len(raw)
    log = raw.decode("utf-8", "replace")
    assert not log.startswith("START ")  # the head was cut off
    assert f"END RequestId: {request_id(resp)}" in log
    assert "line 299 " in log
    report(log, request_id(resp))


def test_warm_reuse_keeps_globals_and_tmp(lambda_client: Any, make_function: Any) -> None:
    name = probe(make_function, "warm")
    first = json.loads(invoke(lambda_client, name, {"action": "count"})[1])
    second = json.loads(invoke(lambda_client, name, {"action": "count"})[1])
    assert (first["counter"], second["counter"]) == (1, 2)
    assert first["pid"] == second["pid"]
    assert (
        json.loads(invoke(lambda_client, name, {"action": "write_tmp", "text": "persisted"})[1]) == "written"
    )
    assert json.loads(invoke(lambda_client, name, {"action": "read_tmp"})[1]) == {"text": "persisted"}


def test_tmp_is_private_to_a_function(lambda_client: Any, make_function: Any) -> None:
    a = probe(make_function, "tmp-a")
    b = probe(make_function, "tmp-b")
    invoke(lambda_client, a, {"action": "write_tmp", "text": "from-a"})
    assert json.loads(invoke(lambda_client, b, {"action": "read_tmp"})[1]) == {"text": None}


def test_concurrent_invokes_run_in_parallel(lambda_client: Any, make_function: Any) -> None:
    name = probe(make_function, "parallel", Timeout=10)
    results: list[Any] = []

    def run() -> None:
        results.append(invoke(lambda_client, name, {"action": "sleep", "seconds": 1.5}))

    # warm one environment first so that only one cold start is on the critical path
    invoke(lambda_client, name, {"action": "count"})
    threads = [threading.Thread(target=run) for _ in range(2)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    elapsed = time.monotonic() - started
    assert len(results) == 2
    assert all(json.loads(body) == "slept" for _, body in results)
    assert elapsed < 2.9, f"two 1.5 s invokes took {elapsed:.2f} s: they were serialised"


# ---- the function's view of its environment --------------------------------------------------------------


def test_working_directory_and_reserved_env(lambda_client: Any, shared_probe: str) -> None:
    _resp, body = invoke(lambda_client, shared_probe, {"action": "info"})
    out = json.loads(body)
    env = out["env"]
    name = shared_probe
    assert out["cwd"] == "/var/task"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    m = LOG_STREAM_RE.fullmatch(env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert m, env["AWS_LAMBDA_LOG_STREAM_NAME"]
    today = dt.datetime.now(dt.UTC).date()
    assert m["date"] in {d.strftime("%Y/%m/%d") for d in (today, today - dt.timedelta(days=1))}
    assert env["AWS_REGION"] == REGION
    assert env["AWS_DEFAULT_REGION"] == REGION
    assert env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert env["LAMBDA_RUNTIME_DIR"] == "/var/runtime"
    assert re.fullmatch(r"[^:\s]+:\d+", env["AWS_LAMBDA_RUNTIME_API"]), env["AWS_LAMBDA_RUNTIME_API"]
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{RUNTIME}"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert env.get(key), key
    assert env["USER_VAR"] == "user-value"
    assert env["OTHER"] == "x=y"
    assert env.get("LANG") == "en_US.UTF-8"


def test_context_fields(lambda_client: Any, shared_probe: str) -> None:
    _resp, body = invoke(lambda_client, shared_probe, {"action": "info"})
    out = json.loads(body)
    ctx = out["context"]
    env = out["env"]
    assert ctx["function_name"] == shared_probe
    assert ctx["function_version"] == "$LATEST"
    assert ctx["memory_limit_in_mb"] == "256"  # a string in the Python runtime
    assert ctx["invoked_function_arn"] == function_arn(shared_probe)
    assert ctx["log_group_name"] == env["AWS_LAMBDA_LOG_GROUP_NAME"]
    assert ctx["log_stream_name"] == env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert 0 < ctx["remaining_ms"] <= 10_000
    assert ctx["client_context"] is None
    assert out["event"] == {"action": "info"}


@pytest.mark.parametrize("form", ["arn", "partial", "qualified", "query"])
def test_invoke_by_other_names(lambda_client: Any, shared_probe: str, form: str) -> None:
    name = shared_probe
    kwargs, expected_arn = {
        "arn": ({"FunctionName": function_arn(name)}, function_arn(name)),
        "partial": ({"FunctionName": f"{ACCOUNT}:function:{name}"}, function_arn(name)),
        "qualified": ({"FunctionName": f"{name}:$LATEST"}, function_arn(name, "$LATEST")),
        "query": ({"FunctionName": name, "Qualifier": "$LATEST"}, function_arn(name, "$LATEST")),
    }[form]
    resp = lambda_client.invoke(Payload=b'{"action": "info"}', **kwargs)
    out = json.loads(resp["Payload"].read())
    assert resp["StatusCode"] == 200
    assert resp["ExecutedVersion"] == "$LATEST"
    assert out["context"]["function_name"] == name
    assert out["context"]["invoked_function_arn"] == expected_arn


def test_client_context(lambda_client: Any, shared_probe: str) -> None:
    client_context = {
        "client": {
            "installation_id": "inst-1",
            "app_title": "Shoal Test",
            "app_version_name": "1.0",
            "app_version_code": "100",
            "app_package_name": "dev.shoal.test",
        },
        "custom": {"tenant": "acme", "n": 3},
        "env": {"platform": "linux", "locale": "en_US"},
    }
    encoded = base64.b64encode(json.dumps(client_context).encode()).decode()
    resp, body = invoke(lambda_client, shared_probe, {"action": "info"}, ClientContext=encoded)
    assert resp["StatusCode"] == 200
    got = json.loads(body)["context"]["client_context"]
    assert got is not None
    assert got["custom"] == client_context["custom"]
    assert got["env"] == client_context["env"]
    for key, value in client_context["client"].items():
        assert got["client"][key] == value, key


# ---- function errors (200 + Unhandled) ---------------------------------------------------------------------


def test_function_exception(lambda_client: Any, shared_probe: str) -> None:
    resp, body = invoke(
        lambda_client, shared_probe, {"action": "raise", "message": "it broke"}, LogType="Tail"
    )
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    assert resp["ExecutedVersion"] == "$LATEST"
    err = json.loads(body)
    assert set(err) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert err["errorMessage"] == "it broke"
    assert err["errorType"] == "ValueError"
    assert err["requestId"] == request_id(resp)
    assert isinstance(err["stackTrace"], list) and err["stackTrace"]
    assert any('File "/var/task/app.py"' in frame and "in handler" in frame for frame in err["stackTrace"])
    log = tail(resp)
    assert "[ERROR] ValueError: it broke" in log
    assert "Traceback (most recent call last):" in log
    report(log, request_id(resp))
    # the environment survives a handled-by-runtime exception
    assert json.loads(invoke(lambda_client, shared_probe, {"action": "return", "value": "ok"})[1]) == "ok"


def test_timeout(lambda_client: Any, make_function: Any) -> None:
    name = probe(make_function, "timeout", Timeout=1)
    assert (
        json.loads(invoke(lambda_client, name, {"action": "write_tmp", "text": "before-timeout"})[1])
        == "written"
    )
    started = time.monotonic()
    resp, body = invoke(lambda_client, name, {"action": "sleep", "seconds": 5}, LogType="Tail")
    elapsed = time.monotonic() - started
    rid = request_id(resp)
    assert elapsed < 4.0, elapsed
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    assert json.loads(body) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {rid} Error: Task timed out after 1.00 seconds",
    }
    log = tail(resp)
    assert re.search(
        rf"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z {re.escape(rid)} Task timed out after "
        r"\d+\.\d\d seconds$",
        log,
        re.M,
    ), log
    m = report(log, rid)
    assert m["status"] == "timeout", m[0]

    # the next invoke works, in a fresh (re-initialised) environment
    resp2, body2 = invoke(lambda_client, name, {"action": "count"}, LogType="Tail")
    assert "FunctionError" not in resp2
    assert json.loads(body2)["counter"] == 1
    assert_report(tail(resp2), request_id(resp2), cold=True)


def test_reset_replaces_the_environment(lambda_client: Any, make_function: Any) -> None:
    """After a crash the next invocation runs in a fresh environment (a new INIT, a new log stream).

    AWS restarts the runtime inside the same environment and keeps /tmp (spec §2.4); Shoal replaces the
    environment, /tmp included — a known difference recorded in docs/compatibility.md.
    """
    name = probe(make_function, "reset-tmp")
    invoke(lambda_client, name, {"action": "write_tmp", "text": "kept"})
    resp, _ = invoke(lambda_client, name, {"action": "exit", "code": 1})
    assert resp["FunctionError"] == "Unhandled"
    resp, body = invoke(lambda_client, name, {"action": "read_tmp"}, LogType="Tail")
    assert "FunctionError" not in resp
    assert "Init Duration" in tail(resp)  # re-initialised
    assert json.loads(body) == {"text": None}


def test_process_exit(lambda_client: Any, make_function: Any) -> None:
    name = probe(make_function, "exit")
    resp, body = invoke(lambda_client, name, {"action": "exit", "code": 3}, LogType="Tail")
    rid = request_id(resp)
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    assert json.loads(body) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: exit status 3",
    }
    log = tail(resp)
    assert "Runtime exited with error: exit status 3" in log
    m = report(log, rid)
    assert m["status"] == "error", m[0]
    assert m["error_type"] == "Runtime.ExitError", m[0]
    resp2, body2 = invoke(lambda_client, name, {"action": "count"}, LogType="Tail")
    assert "FunctionError" not in resp2
    assert json.loads(body2)["counter"] == 1
    assert_report(tail(resp2), request_id(resp2), cold=True)


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        (
            {"app.py": "import nope\n\ndef handler(e, c):\n    return 1\n"},
            "app.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'nope'",
        ),
        (
            {"app.py": "def other(e, c):\n    return 1\n"},
            "app.handler",
            "Runtime.HandlerNotFound",
            "Handler 'handler' missing on module 'app'",
        ),
        (
            {"app.py": "def handler(event, context:\n    return 1\n"},
            "app.handler",
            "Runtime.UserCodeSyntaxError",
            None,
        ),
        ({"app.py": "def handler(e, c):\n    return 1\n"}, "nodot", "Runtime.MalformedHandlerName", None),
        (
            {"app.py": "def handler(e, c):\n    return 1\n"},
            "missing_module.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'missing_module': No module named 'missing_module'",
        ),
    ],
    ids=["import-error", "handler-not-found", "syntax-error", "malformed-handler", "module-not-found"],
)
def test_init_errors(
    lambda_client: Any,
    make_function: Any,
    files: dict[str, str],
    handler: str,
    error_type: str,
    message: str | None,
) -> None:
    name = unique_name("init-error")
    created = make_function(name, files, handler=handler)
    assert created["Handler"] == handler
    for _ in range(2):  # init is retried on every invoke and fails the same way
        resp, body = invoke(lambda_client, name, {}, LogType="Tail")
        assert resp["StatusCode"] == 200
        assert resp["FunctionError"] == "Unhandled"
        err = json.loads(body)
        assert err["errorType"] == error_type, err
        if message is not None:
            assert err["errorMessage"] == message
        elif error_type == "Runtime.UserCodeSyntaxError":
            assert err["errorMessage"].startswith("Syntax error in module 'app': "), err
        else:
            assert err["errorMessage"].startswith(f"Bad handler '{handler}'"), err
        assert err.get("requestId", "") == ""
        if error_type != "Runtime.UserCodeSyntaxError":
            assert err.get("stackTrace", []) == []
        report(tail(resp), request_id(resp))
    cfg = lambda_client.get_function_configuration(FunctionName=name)
    assert cfg["State"] == "Active"


# ---- invocation errors (non-200) --------------------------------------------------------------------------


def test_non_json_payload(lambda_client: Any, shared_probe: str) -> None:
    with pytest.raises(ClientError) as ei:
        lambda_client.invoke(FunctionName=shared_probe, Payload=b"this is { not json")
    status, code, _ = error_of(ei.value)
    assert (status, code) == (400, "InvalidRequestContentException")


def test_request_payload_too_large(lambda_client: Any, shared_probe: str) -> None:
    payload = b'"' + b"a" * (6_291_456 - 1) + b'"'  # 6291457 bytes of valid JSON
    with pytest.raises(ClientError) as ei:
        lambda_client.invoke(FunctionName=shared_probe, Payload=payload)
    assert error_of(ei.value) == (413, "RequestEntityTooLargeException", INVOKE_TOO_LARGE)


def test_request_payload_at_limit_is_accepted(lambda_client: Any, make_function: Any) -> None:
    name = unique_name("at-limit")
    make_function(name, {"app.py": "def handler(event, context):\n    return len(event)\n"}, MemorySize=512)
    payload = b'"' + b"a" * (6_291_456 - 2) + b'"'  # exactly 6291456 bytes
    resp, body = invoke(lambda_client, name, Payload=payload)
    assert resp["StatusCode"] == 200
    assert "FunctionError" not in resp
    assert json.loads(body) == 6_291_456 - 2


def test_response_too_large(lambda_client: Any, make_function: Any) -> None:
    name = probe(make_function, "big-response", MemorySize=512)
    resp, body = invoke(lambda_client, name, {"action": "big", "size": 6_291_556})
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    assert json.loads(body) == RESPONSE_TOO_LARGE
    resp2, body2 = invoke(lambda_client, name, {"action": "big", "size": 10})
    assert "FunctionError" not in resp2
    assert json.loads(body2) == "x" * 10


def test_dry_run(lambda_client: Any, make_function: Any) -> None:
    name = probe(make_function, "dry-run")
    before = json.loads(invoke(lambda_client, name, {"action": "count"})[1])["counter"]
    resp, body = invoke(lambda_client, name, {"action": "count"}, InvocationType="DryRun")
    assert resp["StatusCode"] == 204
    assert body == b""
    assert "FunctionError" not in resp
    after = json.loads(invoke(lambda_client, name, {"action": "count"})[1])["counter"]
    assert after == before + 1  # the dry run did not run the function


def test_unknown_function(lambda_client: Any) -> None:
    name = unique_name("nobody")
    with pytest.raises(ClientError) as ei:
        lambda_client.invoke(FunctionName=name, Payload=b"{}")
    assert error_of(ei.value) == (
        404,
        "ResourceNotFoundException",
        f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
    )
    with pytest.raises(ClientError) as ei:
        lambda_client.invoke(FunctionName=name, Payload=b"{}", InvocationType="DryRun")
    assert error_of(ei.value)[:2] == (404, "ResourceNotFoundException")


def test_invalid_invocation_type(lambda_client: Any, shared_probe: str) -> None:
    with pytest.raises(ClientError) as ei:
        lambda_client.invoke(FunctionName=shared_probe, Payload=b"{}", InvocationType="Bogus")
    status, code, message = error_of(ei.value)
    assert (status, code) == (400, "ValidationException")
    assert message.startswith(
        "1 validation error detected: Value 'Bogus' at 'invocationType' failed to satisfy "
        "constraint: Member must satisfy enum value set: ["
    ), message


def test_invalid_log_type(endpoint: str, shared_probe: str) -> None:
    resp = raw_request(
        endpoint,
        "POST",
        f"/2015-03-31/functions/{shared_probe}/invocations",
        data=b"{}",
        headers={"X-Amz-Log-Type": "Everything"},
    )
    assert resp.status_code == 400, resp.text


def test_invoke_while_pending(lambda_client: Any, make_function: Any) -> None:
    name = unique_name("pending-invoke")
    created = make_function(name, PROBE, wait=False)
    try:
        resp, body = invoke(lambda_client, name, {"action": "count"})
    except ClientError as exc:
        # AWS refuses invokes of a Pending function
        assert created["State"] == "Pending"
        assert error_of(exc) == (409, "ResourceConflictException", PENDING_CONFLICT)
    else:
        # Shoal had already made it Active: then the invoke must simply have worked
        assert resp["StatusCode"] == 200
        assert "FunctionError" not in resp
        assert json.loads(body)["counter"] == 1
    wait_active(lambda_client, name)


# ---- updates and environments -----------------------------------------------------------------------------


def test_update_code_runs_in_new_environment(lambda_client: Any, make_function: Any) -> None:
    name = unique_name("code-swap")
    make_function(name, {"app.py": "def handler(event, context):\n    return 'old'\n"})
    resp, body = invoke(lambda_client, name, LogType="Tail")
    assert body == b'"old"'
    assert_report(tail(resp), request_id(resp), cold=True)
    resp, body = invoke(lambda_client, name, LogType="Tail")
    assert_report(tail(resp), request_id(resp), cold=False)

    lambda_client.update_function_code(
        FunctionName=name, ZipFile=make_zip({"app.py": "def handler(e, c):\n    return 'new'\n"})
    )
    wait_updated(lambda_client, name)
    resp, body = invoke(lambda_client, name, LogType="Tail")
    assert body == b'"new"'
    assert_report(tail(resp), request_id(resp), cold=True)


def test_update_configuration_runs_in_new_environment(lambda_client: Any, make_function: Any) -> None:
    name = probe(make_function, "config-swap", Environment={"Variables": {"STAGE": "one"}})
    first = json.loads(invoke(lambda_client, name, {"action": "info"})[1])
    assert first["env"]["STAGE"] == "one"
    lambda_client.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"STAGE": "two"}}, MemorySize=320
    )
    wait_updated(lambda_client, name)
    resp, body = invoke(lambda_client, name, {"action": "info"}, LogType="Tail")
    out = json.loads(body)
    assert out["env"]["STAGE"] == "two"
    assert out["counter"] == 1
    assert out["context"]["memory_limit_in_mb"] == "320"
    assert_report(tail(resp), request_id(resp), 320, cold=True)


def test_init_error_is_in_the_invocation_tail(lambda_client: Any, make_function: Any) -> None:
    """A failed init is re-run inside the invoke (``Phase: invoke``): its error record is in that log."""
    name = unique_name("init-tail")
    make_function(name, {"app.py": "import nope\n"})
    resp, _body = invoke(lambda_client, name, {}, LogType="Tail")
    assert resp["FunctionError"] == "Unhandled"
    log = tail(resp)
    assert (
        "[ERROR] Runtime.ImportModuleError: Unable to import module 'app': No module named 'nope'" in log
    ), log
    m = report(log, request_id(resp))
    assert m["status"] == "error", m[0]
    assert m["error_type"] == "Runtime.ImportModuleError", m[0]

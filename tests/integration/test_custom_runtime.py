"""Custom runtimes (provided*) on real processes, each sandbox backend: a shell script with curl, a Go binary
and AWS's own Python runtime interface client (awslambdaric) as the function's ``bootstrap``.

awslambdaric is the strongest check that Shoal's Runtime API is the real one: it is AWS's client, unchanged.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import shutil
import time
from pathlib import Path

import pytest

from shoal.environments.environment import Environment, Invocation, Settings
from shoal.runtimes import custom
from shoal.runtimes.builtin import registry
from shoal.sandbox import namespace
from shoal.sandbox.namespace import NamespaceBackend
from shoal.sandbox.process import ProcessBackend
from tests.function_configs import function_config

_spec = importlib.util.spec_from_file_location(
    "custom_builders", Path(__file__).parents[1] / "fixtures" / "custom" / "builders.py"
)
assert _spec is not None and _spec.loader is not None
builders = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(builders)

ARN = "arn:aws:lambda:us-east-1:123456789012:function:f"
RUNTIME = custom.CustomFamily.runtime("provided.al2023")
NS_OK, NS_WHY = namespace.available()
RAISE_LINE = builders.AWSLAMBDARIC_APP.splitlines().index('        raise ValueError("ric says no")') + 1
NOT_FOUND = "Couldn't find valid bootstrap(s): [{root}/bootstrap /opt/bootstrap]"

BACKENDS = [
    pytest.param(ProcessBackend, id="process"),
    pytest.param(
        NamespaceBackend,
        id="namespace",
        marks=pytest.mark.skipif(not NS_OK, reason=f"namespace sandbox unavailable on this host: {NS_WHY}"),
    ),
]

needs_curl = pytest.mark.skipif(
    shutil.which("curl") is None, reason="the shell-script runtime needs curl: apt-get install -y curl"
)


def config(**kw):
    return function_config(**{"runtime": RUNTIME.id, "handler": "function.handler", **kw})


@pytest.fixture(params=BACKENDS)
def backend(request):
    made = request.param()
    yield made
    closer = getattr(made, "close", None)
    if closer is not None:
        closer()


class Recorder:
    """Every log line an environment writes (INIT_START and INIT_REPORT come before any invocation)."""

    def __init__(self):
        self.lines = []

    def emit(self, account, group, stream, timestamp, message):
        self.lines.append(message)


@pytest.fixture
def make_env(tmp_path, backend):
    made = []

    def make(files, **kw):
        code = builders.write_tree(tmp_path / f"code{len(made)}", files)
        recorder = Recorder()
        env = Environment(
            config(**kw),
            RUNTIME,
            backend,
            code,
            tmp_path / "envs",
            recorder.emit,
            Settings(region="us-east-1", init_timeout=10, endpoint="http://127.0.0.1:1"),
        )
        env.recorder = recorder
        made.append(env)
        return env

    yield make
    for env in made:  # end every process this test started
        if env.process is not None and env.process.returncode is None:
            asyncio.run(_destroy(env))
        if env.process is not None:
            assert _gone(env.process.pid)


async def _destroy(env):
    env.process.kill()


def _gone(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def invocation(rid, payload=b"{}"):
    return Invocation(request_id=rid, payload=payload, invoked_arn=ARN)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


def session(env, *payloads):
    """Start ``env``, invoke it with each (request id, payload) in turn, shut it down; the outcomes."""
    return sessions((env, payloads))[0]


def sessions(*plans):
    """Run several (env, payloads) plans one after the other in one event loop; their outcomes."""

    async def scenario():
        results = []
        for env, payloads in plans:
            await env.start()
            results.append([await env.invoke(invocation(rid, payload)) for rid, payload in payloads])
            await env.shutdown()
        return results

    return run(scenario())


def output(out):
    """The function's own lines of an invocation: between START and END."""
    start = next(i for i, line in enumerate(out.log_lines) if line.startswith("START RequestId: "))
    return out.log_lines[start + 1 : -2]


def assert_platform_lines(out, rid, init=False, status=None):
    start = out.log_lines.index(f"START RequestId: {rid} Version: $LATEST")
    assert start == 0 or (
        init and out.log_lines[0].startswith("INIT_START ")
    )  # a cold tail may open with INIT
    assert out.log_lines[-2] == f"END RequestId: {rid}"
    assert out.log_lines[-1].startswith(f"REPORT RequestId: {rid}\tDuration: ")
    assert ("Init Duration" in out.log_lines[-1]) == init
    if status is None:
        assert "Status:" not in out.log_lines[-1]
    else:
        assert out.log_lines[-1].endswith(status)


# ---- the family --------------------------------------------------------------------------------------------


def test_custom_runtimes_are_always_offered():
    reg = registry()
    reg.discover({})
    for runtime_id, generation in (
        ("provided", "al1"),
        ("provided.al2", "al2"),
        ("provided.al2023", "al2023"),
    ):
        runtime = reg.require(runtime_id)
        assert runtime.runtime_version == f"provided:{generation}.v1"
        assert runtime.managed is False and runtime.host_paths == () and runtime.entrypoint is not None


def _tree(tmp_path, files):
    return builders.write_tree(tmp_path / f"t{len(list(tmp_path.iterdir()))}", files)


def test_bootstrap_choice_follows_lambda(tmp_path):
    find, why = custom.find_bootstrap, custom.describe_problem
    script = ("#!/bin/sh\nexit 0\n", 0o755)
    opt = _tree(tmp_path, {"bootstrap": script})
    empty = _tree(tmp_path, {"other": "x"})

    assert find(_tree(tmp_path, {"bootstrap": script}), None) == "{task_root}/bootstrap"
    assert find(empty, opt) == "{opt}/bootstrap"  # a layer's bootstrap when the function has none
    assert find(empty, None) is None
    assert why(empty, None) == NOT_FOUND.format(root="/var/task")
    # a directory named bootstrap is skipped (a layer's bootstrap then runs)
    with_dir = _tree(tmp_path, {"bootstrap/readme": "x"})
    assert find(with_dir, opt) == "{opt}/bootstrap"
    assert find(with_dir, None) is None
    # a bootstrap that exists but cannot run is *the* bootstrap: no fall-back, Runtime.InvalidEntrypoint
    cases = {
        "permission denied": ("#!/bin/sh\nexit 0\n", 0o644),
        "no such file or directory": ("#!/bin/sh\r\nexit 0\r\n", 0o755),  # CRLF: looks for "/bin/sh\r"
        "exec format error": ("echo no interpreter line\n", 0o755),
    }
    for reason, bootstrap in cases.items():
        root = _tree(tmp_path, {"bootstrap": bootstrap})
        assert find(root, opt) is None, reason
        assert why(root, opt) == f"fork/exec /var/task/bootstrap: {reason}"
    missing_interpreter = _tree(tmp_path, {"bootstrap": ("#!/no/such/interpreter\n", 0o755)})
    assert why(missing_interpreter, None) == "fork/exec /var/task/bootstrap: no such file or directory"
    # an interpreter the function ships, named by its sandbox path or relative to the task root
    own = _tree(tmp_path, {"bin/run": script, "bootstrap": ("#!/var/task/bin/run\n", 0o755)})
    assert find(own, None) == "{task_root}/bootstrap"
    relative = _tree(tmp_path, {"bin/run": script, "bootstrap": ("#!bin/run\n", 0o755)})
    assert find(relative, None) == "{task_root}/bootstrap"
    # symbolic links resolve as in the sandbox, absolute targets under /var/task included
    linked = _tree(tmp_path, {"bin/app": script})
    (linked / "bootstrap").symlink_to("/var/task/bin/app")
    assert find(linked, None) == "{task_root}/bootstrap"
    dangling = _tree(tmp_path, {})
    (dangling / "bootstrap").symlink_to("nowhere")
    assert find(dangling, None) is None and why(dangling, None) == NOT_FOUND.format(root="/var/task")
    assert (
        find(_tree(tmp_path, {"bootstrap": (b"\x7fELF" + bytes(60), 0o755)}), None) == "{task_root}/bootstrap"
    )


# ---- failures before the runtime runs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "files",
    [
        pytest.param({"function.sh": "echo hi\n"}, id="missing"),
        pytest.param({"bootstrap/inner": "x"}, id="directory"),
        pytest.param({"bootstrap": ("#!/bin/sh\necho hi\n", 0o644)}, id="not-executable"),
        pytest.param({"bootstrap": ("#!/bin/sh\r\necho hi\r\n", 0o755)}, id="crlf-shebang"),
        pytest.param({"bootstrap": ("#!/usr/bin/no-such-shell\n", 0o755)}, id="missing-interpreter"),
        pytest.param({"bootstrap": ("echo no shebang\n", 0o755)}, id="exec-format"),
    ],
)
def test_unusable_bootstrap_is_invalid_entrypoint(make_env, backend, files):
    env = make_env(files)
    (out,) = session(env, ("rid-e", b"{}"))
    assert env.process is None  # nothing was started
    body = json.loads(out.payload)
    assert out.function_error and out.error_type == "Runtime.InvalidEntrypoint"
    assert body["errorType"] == "Runtime.InvalidEntrypoint"
    assert body["errorMessage"] == f"RequestId: rid-e Error: {NOT_FOUND.format(root='/var/task')}"
    assert any(
        line.startswith("INIT_REPORT Init Duration: ")
        and line.endswith("\tPhase: init\tStatus: error\tError Type: Runtime.InvalidEntrypoint")
        for line in env.recorder.lines
    )
    assert out.log_lines[-1].endswith("Status: error\tError Type: Runtime.InvalidEntrypoint")


def task_root(backend, env):
    """LAMBDA_TASK_ROOT as the backend shows it: /var/task in the namespace sandbox, else the host path."""
    return "/var/task" if isinstance(backend, NamespaceBackend) else str(env.code_dir)


def test_exec_failure_is_invalid_entrypoint(make_env):
    env = make_env({"bootstrap": (b"\x7fELF" + bytes(60), 0o755)})
    (out,) = session(env, ("rid-e", b"{}"))
    assert out.error_type == "Runtime.InvalidEntrypoint"
    assert json.loads(out.payload)["errorMessage"].startswith("RequestId: rid-e Error: fork/exec ")


# ---- a shell script with curl ------------------------------------------------------------------------------


def shell_function():
    return {"bootstrap": (builders.SHELL_BOOTSTRAP.read_bytes(), 0o755)}


@needs_curl
def test_shell_runtime_echo_context_environment_logs_and_reuse(make_env, backend):
    env = make_env(shell_function(), environment={"CUSTOM_VAR": "custom value"})
    before = time.time()
    first, second = session(env, ("rid-1", b'{"n": 1}'), ("rid-2", b'{"n": 2}'))
    one, two = json.loads(first.payload), json.loads(second.payload)
    assert not first.function_error and not second.function_error
    assert one["echo"] == {"n": 1} and two["echo"] == {"n": 2}
    assert (one["count"], two["count"]) == (1, 2)  # the same process served both: warm reuse
    assert one["requestId"] == "rid-1" and one["invokedArn"] == ARN
    assert before + 2.5 < one["deadlineMs"] / 1000 < time.time() + 3.5  # now + Timeout, in epoch ms
    assert one["trace"].startswith("Root=1-")
    root = task_root(backend, env)
    assert one | {"echo": None, "count": None, "requestId": None, "deadlineMs": None, "trace": None} == {
        "echo": None,
        "count": None,
        "requestId": None,
        "deadlineMs": None,
        "trace": None,
        "invokedArn": ARN,
        "handler": "function.handler",
        "functionName": "f",
        "memory": "128",
        "version": "$LATEST",
        "logGroup": "/aws/lambda/f",
        "logStream": env.stream,
        "executionEnv": "<unset>",  # custom runtimes get no AWS_EXECUTION_ENV
        "taskRoot": root,
        "cwd": root,
        "custom": "custom value",
    }
    assert output(first) == ["invocation 1 rid-1", "to stderr 1"]
    assert_platform_lines(first, "rid-1", init=True)
    assert_platform_lines(second, "rid-2")
    init_start = env.recorder.lines[0]
    assert re.fullmatch(
        r"INIT_START Runtime Version: provided:al2023\.v1\t"
        r"Runtime Version ARN: arn:aws:lambda:us-east-1::runtime:[0-9a-f]{64}",
        init_start,
    )
    assert "shell bootstrap ready: handler=function.handler" in env.recorder.lines


@needs_curl
def test_shell_runtime_error_report_is_returned_verbatim(make_env):
    env = make_env(shell_function())
    out, after = session(env, ("rid-f", b'{"fail": true}'), ("rid-g", b"{}"))
    assert out.function_error and out.status == "success"  # a reported error: the runtime lives on
    assert json.loads(out.payload) == {
        "errorMessage": "shell says no",
        "errorType": "ShellError",
        "stackTrace": ["bootstrap:42"],
    }
    assert_platform_lines(out, "rid-f", init=True)
    assert json.loads(after.payload)["count"] == 2


@needs_curl
def test_shell_runtime_crash_is_runtime_exit_error(make_env):
    env = make_env(shell_function())
    (out,) = session(env, ("rid-x", b'{"exit": 3}'))
    assert json.loads(out.payload) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": "RequestId: rid-x Error: Runtime exited with error: exit status 3",
    }
    assert "exiting with 3" in out.log_lines
    assert "RequestId: rid-x Error: Runtime exited with error: exit status 3" in out.log_lines
    assert out.log_lines[-1].endswith("Status: error\tError Type: Runtime.ExitError")
    assert not env.alive


@needs_curl
def test_shell_runtime_timeout(make_env):
    env = make_env(shell_function(), timeout=1)
    started = time.monotonic()
    (out,) = session(env, ("rid-t", b'{"sleep": 30}'))
    assert time.monotonic() - started < 20  # killed at the timeout, not after the sleep
    assert json.loads(out.payload) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "RequestId: rid-t Error: Task timed out after 1.00 seconds",
    }
    # the log line names the time that passed (AWS: "… Task timed out after 30.27 seconds")
    assert any(re.search(r" rid-t Task timed out after \d+\.\d\d seconds$", line) for line in out.log_lines)
    assert out.log_lines[-1].endswith("Status: timeout")


@needs_curl
def test_shell_runtime_init_error(make_env):
    env = make_env(shell_function(), environment={"INIT_FAIL": "1"})
    (out,) = session(env, ("rid-i", b"{}"))
    assert out.function_error and out.error_type == "Runtime.ConfigError"
    assert json.loads(out.payload) == {
        "errorMessage": "INIT_FAIL is set",
        "errorType": "Runtime.ConfigError",
        "stackTrace": [],
    }
    assert "init failing on purpose" in env.recorder.lines
    assert any(
        line.endswith("Phase: init\tStatus: error\tError Type: Runtime.ConfigError")
        for line in env.recorder.lines
    )


@needs_curl
def test_shell_runtime_large_response_with_expect_continue(make_env):
    # curl sends "Expect: 100-continue" for bodies over 1 MiB and, in this bootstrap, waits up to 20 s for the
    # "100 Continue" an HTTP/1.1 server owes it: past the 5 s timeout if the Runtime API never answers it
    env = make_env(shell_function(), timeout=5)
    (out,) = session(env, ("rid-b", b'{"big": 2000000}'))
    assert out.status == "success", out.payload[:200]
    assert len(json.loads(out.payload)["pad"]) == 2_000_000


# ---- Go, as Go runs on Lambda: a static bootstrap binary ---------------------------------------------------


@pytest.fixture(scope="session")
def go_bootstrap(tmp_path_factory):
    try:
        return builders.go_binary(tmp_path_factory.getbasetemp() / "custom-go")
    except builders.Unavailable as exc:
        pytest.skip(str(exc))


def test_go_runtime_result_error_context_logs(make_env, backend, go_bootstrap):
    env = make_env(
        {"bootstrap": (go_bootstrap.read_bytes(), 0o755)},
        handler="bootstrap",
        environment={"CUSTOM_VAR": "from go"},
    )
    first, failed, third = session(env, ("rid-1", b'{"n": 1}'), ("rid-2", b'{"fail": 1}'), ("rid-3", b"{}"))
    one = json.loads(first.payload)
    root = task_root(backend, env)
    assert 2000 < one.pop("remainingMs") <= 3000
    assert one.pop("traceEnv").startswith("Root=1-")
    assert one == {
        "echo": {"n": 1},
        "count": 1,
        "requestId": "rid-1",
        "invokedFunctionArn": ARN,
        "functionName": "f",
        "functionVersion": "$LATEST",
        "memoryLimitInMB": 128,
        "logGroupName": "/aws/lambda/f",
        "logStreamName": env.stream,
        "handler": "bootstrap",
        "hasExecutionEnv": False,
        "cwd": root,
        "custom": "from go",
    }
    # aws-lambda-go's error shape (spec §2.4): the message and the Go type name of the error
    assert failed.function_error
    assert json.loads(failed.payload) == {"errorMessage": "something went wrong!", "errorType": "errorString"}
    assert json.loads(third.payload)["count"] == 3  # warm: one process for all three
    assert output(first)[0] == "invocation 1 rid-1"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d logged through the log package", output(first)[1])
    assert_platform_lines(first, "rid-1", init=True)
    assert_platform_lines(failed, "rid-2")
    assert env.recorder.lines[0].startswith("INIT_START Runtime Version: provided:al2023.v1\t")


def test_go_runtime_crash_and_timeout(make_env, go_bootstrap):
    crash = make_env({"bootstrap": (go_bootstrap.read_bytes(), 0o755)})
    slow = make_env({"bootstrap": (go_bootstrap.read_bytes(), 0o755)}, timeout=1)
    (out,), (late,) = sessions((crash, [("rid-x", b'{"exit": 1}')]), (slow, [("rid-t", b'{"sleep": 1}')]))
    assert (
        json.loads(out.payload)["errorMessage"]
        == "RequestId: rid-x Error: Runtime exited with error: exit status 3"
    )
    assert late.status == "timeout" and json.loads(late.payload)["errorType"] == "Sandbox.Timedout"


# ---- AWS's Python runtime interface client as a custom runtime ---------------------------------------------


@pytest.fixture(scope="session")
def ric_tree(tmp_path_factory):
    tree, _python = builders.awslambdaric_tree(tmp_path_factory.getbasetemp() / "custom-awslambdaric")
    return {name: value for name, value in builders.tree_files(tree).items()}


def test_awslambdaric_result_error_context_logging_reuse(make_env, backend, ric_tree):
    env = make_env(ric_tree, handler="app.handler", environment={"CUSTOM_VAR": "ric"})
    first, failed, third = session(env, ("rid-1", b'{"n": 1}'), ("rid-2", b'{"fail": 1}'), ("rid-3", b"{}"))
    root = task_root(backend, env)
    one = json.loads(first.payload)
    assert 2000 < one.pop("remainingMs") <= 3000
    assert one.pop("traceEnv").startswith("Root=1-")  # the RIC copies Lambda-Runtime-Trace-Id to the env
    assert one == {
        "count": 1,
        "requestId": "rid-1",
        "functionName": "f",
        "functionVersion": "$LATEST",
        "memoryLimitInMB": "128",
        "invokedFunctionArn": ARN,
        "logGroupName": "/aws/lambda/f",
        "logStreamName": env.stream,
        "clientContext": None,
        "executionEnv": None,
        "custom": "ric",
    }
    # the Python error shape of spec §2.4, produced by AWS's own client from Shoal's /next headers
    error = json.loads(failed.payload)
    assert failed.function_error and failed.status == "success"
    assert error == {
        "errorMessage": "ric says no",
        "errorType": "ValueError",
        "requestId": "rid-2",
        "stackTrace": [
            f'  File "{root}/app.py", line {RAISE_LINE}, in handler\n    raise ValueError("ric says no")\n'
        ],
    }
    assert json.loads(third.payload)["count"] == 3  # warm reuse: module state survived
    assert output(first)[0] == "print line 1"
    assert re.fullmatch(
        r"\[INFO\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\trid-1\tinfo line 1", output(first)[1]
    )
    assert output(failed)[2].startswith("[ERROR] ValueError: ric says no")
    assert "awslambdaric app imported" in env.recorder.lines
    assert_platform_lines(first, "rid-1", init=True)
    assert_platform_lines(failed, "rid-2")


def test_awslambdaric_timeout_and_import_error(make_env, ric_tree):
    slow = make_env(ric_tree, handler="app.handler", timeout=1)
    broken = make_env(ric_tree, handler="nomodule.handler")
    (out,), (failed,) = sessions((slow, [("rid-t", b'{"sleep": 1}')]), (broken, [("rid-i", b"{}")]))
    assert json.loads(out.payload) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "RequestId: rid-t Error: Task timed out after 1.00 seconds",
    }
    # the RIC reports it through /runtime/init/error; the caller gets its body verbatim (spec §2.4)
    assert failed.function_error and failed.error_type == "Runtime.ImportModuleError"
    assert json.loads(failed.payload) == {
        "errorMessage": "Unable to import module 'nomodule': No module named 'nomodule'",
        "errorType": "Runtime.ImportModuleError",
        "requestId": "",
        "stackTrace": [],
    }
    assert any(
        line.endswith("Phase: init\tStatus: error\tError Type: Runtime.ImportModuleError")
        for line in broken.recorder.lines
    )

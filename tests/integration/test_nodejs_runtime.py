"""The Node.js runtime: real environments on a real ``node``, the real bootstrap, each sandbox backend.

Covers handler loading (CommonJS, ES modules by ``.mjs`` and by ``"type": "module"``, ``.cjs``,
sub-directories), the programming models (async, callback with both ``callbackWaitsForEmptyEventLoop``
values, sync returns, ``context.succeed/fail/done``), error shapes, init errors, the context object, console
formats, warm reuse, timeouts, crashes and runtime discovery. ``SHOAL_TEST_NODE=/path/to/node`` runs the
suite on another node binary (another major version).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.core.types import FunctionConfig
from shoal.environments.environment import Environment, Invocation, Outcome, Settings
from shoal.runtimes import nodejs
from shoal.runtimes.nodejs import NodeFamily, NodeRuntime
from shoal.sandbox import namespace
from shoal.sandbox.namespace import NamespaceBackend
from shoal.sandbox.process import ProcessBackend
from tests.function_configs import function_config

ARN = "arn:aws:lambda:us-east-1:123456789012:function:f"
NS_OK, NS_WHY = namespace.available()
FOUND = NodeFamily().discover({})
RUNTIME: NodeRuntime | None = next(iter(FOUND.values()), None)  # type: ignore[assignment]
if os.environ.get("SHOAL_TEST_NODE"):  # run this suite on another node binary (e.g. another major version)
    _install = nodejs.probe(os.environ["SHOAL_TEST_NODE"])
    assert _install is not None, f"SHOAL_TEST_NODE={os.environ['SHOAL_TEST_NODE']} is not a working node"
    RUNTIME = NodeFamily.runtime(f"nodejs{_install.major}.x", _install)
if RUNTIME is None:
    pytest.skip(
        "no node 18, 20 or 22 on this host: install Node.js (Debian: apt-get install -y nodejs)",
        allow_module_level=True,
    )
assert RUNTIME is not None
MAJOR = int(RUNTIME.version.split(".")[0])

BACKENDS = [
    pytest.param(ProcessBackend, id="process"),
    pytest.param(
        NamespaceBackend,
        id="namespace",
        marks=pytest.mark.skipif(not NS_OK, reason=f"namespace sandbox unavailable on this host: {NS_WHY}"),
    ),
    # every environment specialised from a pre-started node (none kept spare)
    pytest.param(
        lambda: NamespaceBackend(stem_cells=0, await_standby=True),
        id="prestarted",
        marks=pytest.mark.skipif(not NS_OK, reason=f"namespace sandbox unavailable on this host: {NS_WHY}"),
    ),
]
# <ISO time>\t<request id>\t<LEVEL>\t<message>
TEXT_LINE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\t([^\t]*)\t([A-Z]+)\t(.*)", re.S)


def config(**kw: Any) -> FunctionConfig:
    assert RUNTIME is not None
    return function_config(**{"runtime": RUNTIME.id, "handler": "index.handler", **kw})


class Env:
    """An environment plus every log line it emitted (init included)."""

    def __init__(self, env: Environment, lines: list[str], code: Path) -> None:
        self.env = env
        self.lines = lines
        self.code = code
        self.task_root = "/var/task" if isinstance(env.backend, NamespaceBackend) else str(code)

    async def invoke(self, rid: str = "req-1", payload: Any = None, **kw: Any) -> Outcome:
        body = (
            payload if isinstance(payload, bytes) else json.dumps({} if payload is None else payload).encode()
        )
        return await self.env.invoke(Invocation(request_id=rid, payload=body, invoked_arn=ARN, **kw))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Any]:
    made = request.param()
    yield made
    if isinstance(made, NamespaceBackend):
        made.close()


MakeEnv = Callable[..., Env]


@pytest.fixture
def make_env(tmp_path: Path, backend: Any) -> Iterator[MakeEnv]:
    made: list[Environment] = []

    def make(files: dict[str, str], **kw: Any) -> Env:
        assert RUNTIME is not None
        code = tmp_path / f"code{len(made)}"
        code.mkdir()
        for name, source in files.items():
            (code / name).parent.mkdir(parents=True, exist_ok=True)
            (code / name).write_text(source)
        lines: list[str] = []
        env = Environment(
            config(**kw),
            RUNTIME,
            backend,
            code,
            tmp_path / "envs",
            lambda account, group, stream, ts, message: lines.append(message),
            Settings(region="us-east-1", init_timeout=10, endpoint="http://127.0.0.1:1"),
        )
        made.append(env)
        return Env(env, lines, code)

    yield make
    for env in made:  # the fixture ends every process it started
        if env.process is not None and env.process.returncode is None:
            env.process.kill()
        if env.process is not None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not _is_zombie_or_gone(env.process.pid):
                time.sleep(0.02)
            assert _is_zombie_or_gone(env.process.pid)


def _is_zombie_or_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


async def session(env: Env, *invocations: tuple[str, Any] | dict[str, Any]) -> list[Outcome]:
    """Start ``env``, run the invocations in order, shut it down."""
    await env.env.start()
    outs = []
    for item in invocations:
        if isinstance(item, dict):
            outs.append(await env.invoke(**item))
        else:
            outs.append(await env.invoke(*item))
    await env.env.shutdown()
    return outs


def one(env: Env, payload: Any = None, **kw: Any) -> Outcome:
    return run(session(env, {"rid": "req-1", "payload": payload, **kw}))[0]


def app_lines(out: Outcome) -> list[str]:
    """The function's own log lines of one invocation (between START and END)."""
    lines = out.log_lines
    assert lines[0].startswith("START RequestId: ")
    end = next(i for i, line in enumerate(lines) if line.startswith("END RequestId: "))
    return lines[1:end]


def body(out: Outcome) -> Any:
    return json.loads(out.payload)


async def wait_exit(env: Env, timeout: float = 10) -> int:
    process = env.env.process
    assert process is not None
    deadline = time.monotonic() + timeout
    while process.returncode is None and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert process.returncode is not None, "the runtime did not exit"
    return process.returncode


# ---- results, context, environment, warm reuse ------------------------------------------------------------

CONTEXT_PROBE = """
let count = 0;
const started = Date.now();
exports.handler = async (event, context) => {
  count += 1;
  return {
    count, started, event,
    context: JSON.parse(JSON.stringify(context)),
    remaining: context.getRemainingTimeInMillis(),
    functions: ['succeed', 'fail', 'done', 'getRemainingTimeInMillis'].map((k) => typeof context[k]),
    memoryType: typeof context.memoryLimitInMB,
    env: Object.fromEntries(['AWS_EXECUTION_ENV', 'NODE_PATH', 'LAMBDA_TASK_ROOT', 'LAMBDA_RUNTIME_DIR',
      '_HANDLER', 'AWS_LAMBDA_FUNCTION_NAME', 'AWS_REGION', '_X_AMZN_TRACE_ID', 'MY_VAR', 'TZ']
      .map((k) => [k, process.env[k]])),
    cwd: process.cwd(),
    gc: typeof gc,
    awslambda: typeof awslambda.streamifyResponse,
    node: process.versions.node,
  };
};
"""


def test_commonjs_result_context_environment_and_warm_reuse(make_env: MakeEnv) -> None:
    env = make_env({"index.js": CONTEXT_PROBE}, environment={"MY_VAR": "mine"}, memory_size=256, timeout=7)
    client_context = json.dumps({"client": {"app_title": "t"}, "custom": {"k": "v"}, "env": {"e": "1"}})
    first, second = run(
        session(
            env, ("req-a", {"n": 1}), {"rid": "req-b", "payload": {"n": 2}, "client_context": client_context}
        )
    )
    a, b = body(first), body(second)
    assert (a["count"], b["count"]) == (1, 2)  # module state survives: the same process served both
    assert a["started"] == b["started"]
    assert a["event"] == {"n": 1}
    assert a["context"] == {
        "callbackWaitsForEmptyEventLoop": True,
        "functionVersion": "$LATEST",
        "functionName": "f",
        "memoryLimitInMB": "256",
        "logGroupName": "/aws/lambda/f",
        "logStreamName": env.env.stream,
        "invokedFunctionArn": ARN,
        "awsRequestId": "req-a",
    }
    assert b["context"]["awsRequestId"] == "req-b"
    assert b["context"]["clientContext"] == {
        "client": {"app_title": "t"},
        "custom": {"k": "v"},
        "env": {"e": "1"},
    }
    assert 0 < a["remaining"] <= 7000
    assert a["functions"] == ["function"] * 4
    assert a["memoryType"] == "string"
    major = a["node"].split(".")[0]
    assert a["env"]["AWS_EXECUTION_ENV"] == f"AWS_Lambda_nodejs{major}.x"
    runtime_dir = a["env"]["LAMBDA_RUNTIME_DIR"]
    assert a["env"]["NODE_PATH"] == (
        f"/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:{runtime_dir}/node_modules"
    )
    assert a["env"]["LAMBDA_TASK_ROOT"] == env.task_root == a["cwd"]
    assert a["env"]["_HANDLER"] == "index.handler"
    assert a["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "f"
    assert a["env"]["MY_VAR"] == "mine"
    assert a["env"]["_X_AMZN_TRACE_ID"].startswith("Root=1-")
    assert a["gc"] == "function"  # as with AWS's --expose-gc
    assert a["awslambda"] == "function"
    assert not first.function_error and first.status == "success"
    assert first.log_lines[0] == "START RequestId: req-a Version: $LATEST"
    assert first.log_lines[-2] == "END RequestId: req-a"
    assert first.log_lines[-1].startswith("REPORT RequestId: req-a\tDuration: ")
    assert "\tInit Duration: " in first.log_lines[-1] and "Init Duration" not in second.log_lines[-1]
    assert env.lines[0].startswith(f"INIT_START Runtime Version: nodejs:{major}.v")


def test_function_may_set_its_own_node_path(make_env: MakeEnv) -> None:
    env = make_env(
        {"index.js": "exports.handler = async () => process.env.NODE_PATH;"},
        environment={"NODE_PATH": "/var/task/vendor"},
    )
    assert body(one(env)) == "/var/task/vendor"  # as on AWS, whose bootstrap only sets an unset NODE_PATH


@pytest.mark.parametrize(
    "files, handler",
    [
        pytest.param(
            {
                "index.mjs": "export const handler = async (e) => "
                "({ esm: import.meta.url.endsWith('index.mjs'), e });"
            },
            "index.handler",
            id="mjs",
        ),
        pytest.param(
            {
                "package.json": '{"type": "module"}',
                "index.js": "export async function handler(e) "
                "{ return { esm: typeof require === 'undefined', e }; }",
            },
            "index.handler",
            id="package-type-module",
        ),
        pytest.param(
            {
                "package.json": '{"type": "module"}',
                "lib/deep/app.js": "import { sep } from 'node:path';\n"
                "export const run = async (e) => ({ esm: sep === '/', e });",
            },
            "lib/deep/app.run",
            id="esm-subdirectory",
        ),
        pytest.param(
            {"src/app.cjs": "exports.handler = async (e) => ({ esm: false, e });"},
            "src/app.handler",
            id="cjs-subdirectory",
        ),
        pytest.param(
            {
                "lib/index.js": "module.exports = "
                "{ api: { v1: { handler: async (e) => ({ esm: false, e }) } } };"
            },
            "lib/index.api.v1.handler",
            id="nested-export",
        ),
    ],
)
def test_module_formats_and_handler_paths(make_env: MakeEnv, files: dict[str, str], handler: str) -> None:
    out = one(make_env(files, handler=handler), {"k": 1})
    assert not out.function_error, out.payload
    got = body(out)
    assert got["e"] == {"k": 1}
    assert got["esm"] == (handler != "src/app.handler" and "lib/index" not in handler)


def test_package_json_without_type_module_loads_js_as_commonjs(make_env: MakeEnv) -> None:
    env = make_env(
        {"package.json": '{"name": "x"}', "index.js": "exports.handler = async () => typeof require;"}
    )
    assert body(one(env)) == "function"


def test_module_state_survives_in_esm(make_env: MakeEnv) -> None:
    env = make_env({"index.mjs": "let n = 0;\nexport const handler = async () => ++n;"})
    outs = run(session(env, ("a", {}), ("b", {}), ("c", {})))
    assert [body(o) for o in outs] == [1, 2, 3]


def test_large_event_and_response_cross_the_runtime_api_intact(make_env: MakeEnv) -> None:
    env = make_env({"index.js": "exports.handler = async (e) => ({ len: e.data.length, data: e.data });"})
    data = "x" * (3 * 1024 * 1024) + "é"
    out = one(env, {"data": data})
    assert body(out) == {"len": len(data), "data": data}


# ---- programming models -----------------------------------------------------------------------------------


def test_callback_waits_for_the_empty_event_loop_by_default(make_env: MakeEnv) -> None:
    env = make_env(
        {
            "index.js": """
exports.handler = (event, context, callback) => {
  setTimeout(() => console.log('timer fired'), 300);
  callback(null, { waited: context.callbackWaitsForEmptyEventLoop });
};
"""
        }
    )
    out = one(env)
    assert body(out) == {"waited": True}
    assert [line.split("\t")[-1] for line in app_lines(out)] == [
        "timer fired"
    ]  # before the result, before END
    assert out.duration_ms >= 300


def test_callback_returns_at_once_when_not_waiting_for_the_event_loop(make_env: MakeEnv) -> None:
    env = make_env(
        {
            "index.js": """
let fired = 0;
exports.handler = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = false;
  if (event.arm) setTimeout(() => { fired += 1; console.log('late timer'); }, 1000);
  callback(null, { fired });
};
"""
        },
        timeout=10,
    )

    async def scenario() -> tuple[Outcome, list[Outcome]]:
        await env.env.start()
        first = await env.invoke("a", {"arm": True})
        # the pending timer runs later: on AWS in a later invocation (the environment is frozen while idle);
        # in Shoal in a later invocation or in the 50 ms before an idle environment is frozen
        # (docs/compatibility.md)
        later: list[Outcome] = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (not later or body(later[-1])["fired"] == 0):
            later.append(await env.invoke(f"b{len(later)}", {}))
            await asyncio.sleep(0.05)
        await env.env.shutdown()
        return first, later

    first, later = run(scenario())
    assert body(first) == {"fired": 0}
    assert app_lines(first) == []  # answered before the 1 s timer
    assert first.duration_ms < 1000
    assert body(later[-1]) == {"fired": 1}
    assert [line.split("\t")[-1] for line in env.lines if line.endswith("late timer")] == ["late timer"]


def test_callback_error_and_non_error_values(make_env: MakeEnv) -> None:
    env = make_env(
        {
            "index.js": """
exports.handler = (event, context, callback) => {
  if (event.kind === 'error') return callback(new TypeError('bad input'));
  if (event.kind === 'string') return callback('plain string');
  callback(null, 'fine');
  callback(null, 'ignored');  // only the first call counts
};
"""
        }
    )
    error, string, fine = run(session(env, ("a", {"kind": "error"}), ("b", {"kind": "string"}), ("c", {})))
    got = body(error)
    assert (got["errorType"], got["errorMessage"]) == ("TypeError", "bad input")
    assert got["trace"][0] == "TypeError: bad input"
    assert error.function_error
    assert body(string) == {"errorType": "string", "errorMessage": "plain string", "trace": []}
    assert body(fine) == "fine"


def test_sync_handler_result_is_ignored_and_null_is_returned_when_the_loop_empties(make_env: MakeEnv) -> None:
    # AWS's Node.js runtime: a non-async handler that neither returns a promise nor calls the callback
    # answers null once the event loop is empty; its return value is not the result.
    env = make_env(
        {
            "index.js": """
exports.handler = (event, context) => {
  setTimeout(() => console.log('still ran'), 100);
  return { ignored: true };
};
"""
        }
    )
    out = one(env)
    assert out.payload == b"null" and not out.function_error
    assert [line.split("\t")[-1] for line in app_lines(out)] == ["still ran"]


def test_sync_handler_returning_a_promise_is_awaited(make_env: MakeEnv) -> None:
    env = make_env({"index.js": "exports.handler = (event) => Promise.resolve({ via: 'promise' });"})
    assert body(one(env)) == {"via": "promise"}


@pytest.mark.parametrize(
    "call, expected",
    [
        ("context.succeed({ ok: 1 })", {"ok": 1}),
        ("context.done(null, 'done')", "done"),
        ("context.fail(new RangeError('out'))", {"errorType": "RangeError", "errorMessage": "out"}),
        ("context.done(new Error('d'))", {"errorType": "Error", "errorMessage": "d"}),
    ],
)
def test_deprecated_context_methods(make_env: MakeEnv, call: str, expected: Any) -> None:
    env = make_env({"index.js": f"exports.handler = function (event, context) {{ {call}; }};"})
    got = body(one(env))
    if isinstance(expected, dict) and "errorType" in expected:
        assert {k: got[k] for k in ("errorType", "errorMessage")} == expected
    else:
        assert got == expected


def test_async_handler_whose_promise_never_settles_is_runtime_nodejs_exit(make_env: MakeEnv) -> None:
    env = make_env({"index.js": "exports.handler = async () => { await new Promise(() => {}); };"})
    out = one(env)
    got = body(out)
    assert got["errorType"] == "Runtime.NodeJsExit"
    assert got["errorMessage"].startswith(
        "The Lambda runtime client detected an unexpected Node.js exit code."
    )
    assert out.function_error


def test_response_that_json_cannot_represent(make_env: MakeEnv) -> None:
    env = make_env({"index.js": "exports.handler = async () => { const a = {}; a.a = a; return a; };"})
    got = body(one(env))
    assert (got["errorType"], got["errorMessage"]) == ("Error", "Unable to stringify response body")


def test_undefined_result_is_null(make_env: MakeEnv) -> None:
    env = make_env({"index.js": "exports.handler = async () => {};"})
    assert one(env).payload == b"null"


def test_streamified_handler_response_is_collected(make_env: MakeEnv) -> None:
    env = make_env(
        {
            "index.mjs": """
export const handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  responseStream.write('hello ');
  await new Promise((r) => setTimeout(r, 10));
  responseStream.write(context.awsRequestId);
  responseStream.end();
});
"""
        }
    )
    out = one(env)
    assert out.payload == b"hello req-1" and not out.function_error


# ---- errors -----------------------------------------------------------------------------------------------


def test_error_shape_and_log_line(make_env: MakeEnv) -> None:
    # V8 names the frame after the receiver (the runtime's Runtime object) and the function, as on AWS
    env = make_env({"index.js": "async function handler(event) {\n  x;\n}\nexports.handler = handler;\n"})
    out = one(env)
    got = body(out)
    assert list(got) == ["errorType", "errorMessage", "trace"]
    assert got["errorType"] == "ReferenceError"
    assert got["errorMessage"] == "x is not defined"
    assert got["trace"][0] == "ReferenceError: x is not defined"
    assert got["trace"][1] == f"    at Runtime.handler ({env.task_root}/index.js:2:3)"
    assert out.function_error and out.status == "success"  # a function error: no Status on REPORT
    (line,) = app_lines(out)
    m = TEXT_LINE.fullmatch(line)
    assert m and m[2] == "req-1" and m[3] == "ERROR"
    assert m[4].startswith(
        'Invoke Error \t{"errorType":"ReferenceError","errorMessage":"x is not defined",'
        '"stack":["ReferenceError: x is not defined","    at Runtime.handler'
    )
    assert "\n" not in line


def test_thrown_error_keeps_its_own_properties_in_the_log(make_env: MakeEnv) -> None:
    env = make_env(
        {
            "index.js": """
class ValidationError extends Error {
  constructor(m) { super(m); this.name = 'ValidationError'; this.field = 'id'; }
}
exports.handler = async () => { throw new ValidationError('id missing'); };
"""
        }
    )
    out = one(env)
    got = body(out)
    assert (got["errorType"], got["errorMessage"]) == ("ValidationError", "id missing")
    (line,) = app_lines(out)
    logged = json.loads(line.split("\tInvoke Error \t", 1)[1])
    assert logged["field"] == "id" and logged["errorType"] == "ValidationError"


def test_uncaught_exception_during_an_invoke_is_its_error_and_ends_the_process(make_env: MakeEnv) -> None:
    env = make_env(
        {
            "index.js": """
exports.handler = async () => {
  setTimeout(() => { throw new Error('from a timer'); }, 10);
  await new Promise((r) => setTimeout(r, 5000));
  return 'unreachable';
};
"""
        },
        timeout=10,
    )

    async def scenario() -> tuple[Outcome, int]:
        await env.env.start()
        out = await env.invoke("u")
        code = await wait_exit(env)
        await env.env.shutdown()
        return out, code

    out, code = run(scenario())
    got = body(out)
    assert (got["errorType"], got["errorMessage"]) == ("Error", "from a timer")
    assert out.duration_ms < 5000
    assert code == 129  # as AWS's runtime: report, then exit
    assert any("\tERROR\tUncaught Exception \t{" in line for line in app_lines(out))


def test_unhandled_rejection_during_an_invoke(make_env: MakeEnv) -> None:
    env = make_env(
        {
            "index.mjs": """
export const handler = async () => {
  Promise.reject(new Error('nobody listens'));
  await new Promise((r) => setTimeout(r, 5000));
};
"""
        },
        timeout=10,
    )

    async def scenario() -> tuple[Outcome, int]:
        await env.env.start()
        out = await env.invoke("r")
        code = await wait_exit(env)
        await env.env.shutdown()
        return out, code

    out, code = run(scenario())
    got = body(out)
    assert got["errorType"] == "Runtime.UnhandledPromiseRejection"
    assert got["errorMessage"] == "Error: nobody listens"
    assert got["trace"][0] == "Runtime.UnhandledPromiseRejection: Error: nobody listens"
    assert code == 128
    assert any("\tERROR\tUnhandled Promise Rejection \t{" in line for line in app_lines(out))


def test_timeout_kills_and_reports(make_env: MakeEnv) -> None:
    env = make_env(
        {
            "index.js": "exports.handler = async () => "
            "{ setInterval(() => {}, 1000); await new Promise(() => {}); };"
        },
        timeout=1,
    )

    async def scenario() -> tuple[Outcome, float]:
        await env.env.start()
        started = time.monotonic()
        out = await env.invoke("t")
        elapsed = time.monotonic() - started
        await env.env.shutdown()
        return out, elapsed

    out, elapsed = run(scenario())
    assert body(out) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "RequestId: t Error: Task timed out after 1.00 seconds",
    }
    assert out.status == "timeout" and out.log_lines[-1].endswith("\tStatus: timeout")
    assert not env.env.alive
    assert elapsed < 20


def test_process_exit_is_runtime_exit_error(make_env: MakeEnv) -> None:
    env = make_env({"index.js": "exports.handler = async () => { console.log('bye'); process.exit(3); };"})
    out = one(env)
    assert body(out) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": "RequestId: req-1 Error: Runtime exited with error: exit status 3",
    }
    assert any(line.endswith("\tINFO\tbye") for line in out.log_lines)


# ---- init errors ------------------------------------------------------------------------------------------


def init_error(
    make_env: MakeEnv, files: dict[str, str], handler: str = "index.handler"
) -> tuple[dict[str, Any], Env]:
    env = make_env(files, handler=handler)
    out = one(env)
    assert out.function_error and out.status == "error"
    got = body(out)
    assert list(got) == ["errorType", "errorMessage", "trace"]
    init_report = next(line for line in env.lines if line.startswith("INIT_REPORT "))
    # the platform keeps Runtime.* error types for its own accounting, anything else is Runtime.Unknown
    reported = (
        got["errorType"] if re.fullmatch(r"Runtime\.[A-Z][a-zA-Z]+", got["errorType"]) else "Runtime.Unknown"
    )
    assert init_report.endswith(f"\tPhase: init\tStatus: error\tError Type: {reported}")
    return got, env


def test_init_missing_handler_file(make_env: MakeEnv) -> None:
    got, env = init_error(make_env, {"other.js": ""})
    assert got["errorType"] == "Runtime.ImportModuleError"
    assert got["errorMessage"].startswith("Error: Cannot find module 'index'\nRequire stack:\n- ")
    assert got["errorMessage"].endswith("/index.mjs")  # AWS names its runtime's index.mjs here
    assert got["trace"][0] == "Runtime.ImportModuleError: Error: Cannot find module 'index'"
    logged = next(line for line in env.lines if "\tUncaught Exception \t" in line)
    m = TEXT_LINE.fullmatch(logged)
    assert m and m[2] == "undefined" and m[3] == "ERROR"  # no request id during INIT, as on AWS
    assert json.loads(m[4].split(" \t", 1)[1])["errorType"] == "Runtime.ImportModuleError"


def test_init_missing_dependency(make_env: MakeEnv) -> None:
    got, env = init_error(
        make_env, {"index.js": "const x = require('no-such-package-here');\nexports.handler = async () => x;"}
    )
    assert got["errorType"] == "Runtime.ImportModuleError"
    assert got["errorMessage"].startswith(
        f"Error: Cannot find module 'no-such-package-here'\nRequire stack:\n- {env.task_root}/index.js\n- "
    )


def test_init_esm_missing_package_is_reported_as_node_words_it(make_env: MakeEnv) -> None:
    got, env = init_error(
        make_env,
        {"index.mjs": "import x from 'no-such-package-here';\nexport const handler = async () => x;"},
    )
    assert got["errorType"] == "Error"  # ERR_MODULE_NOT_FOUND is not wrapped, as on AWS
    assert (
        got["errorMessage"]
        == f"Cannot find package 'no-such-package-here' imported from {env.task_root}/index.mjs"
    )


def test_init_handler_not_exported(make_env: MakeEnv) -> None:
    got, _ = init_error(make_env, {"index.js": "exports.other = async () => 1;"})
    assert got["errorType"] == "Runtime.HandlerNotFound"
    assert got["errorMessage"] == "index.handler is undefined or not exported"
    assert got["trace"][0] == "Runtime.HandlerNotFound: index.handler is undefined or not exported"


def test_init_handler_not_a_function(make_env: MakeEnv) -> None:
    got, _ = init_error(make_env, {"index.js": "exports.handler = 42;"})
    assert (got["errorType"], got["errorMessage"]) == (
        "Runtime.HandlerNotFound",
        "index.handler is not a function",
    )


@pytest.mark.parametrize(
    "name, source",
    [
        ("index.js", "exports.handler = async () => {;"),
        ("index.mjs", "export const handler = async () => {;"),
    ],
)
def test_init_syntax_error(make_env: MakeEnv, name: str, source: str) -> None:
    got, _ = init_error(make_env, {name: source})
    assert got["errorType"] == "Runtime.UserCodeSyntaxError"
    assert got["errorMessage"].startswith("SyntaxError: ")
    assert got["trace"][0] == f"Runtime.UserCodeSyntaxError: {got['errorMessage']}"


def test_init_esm_syntax_in_a_commonjs_file_is_a_syntax_error(make_env: MakeEnv) -> None:
    got, _ = init_error(make_env, {"index.js": "export const handler = async () => 1;"})
    assert got["errorType"] == "Runtime.UserCodeSyntaxError"
    assert got["errorMessage"] == "SyntaxError: Unexpected token 'export'"


@pytest.mark.parametrize(
    "handler, message",
    [
        ("index", "Bad handler"),
        (
            "../index.handler",
            "'../index.handler' is not a valid handler name. Use absolute paths when specifying "
            "root directories in handler names.",
        ),
    ],
)
def test_init_malformed_handler_name(make_env: MakeEnv, handler: str, message: str) -> None:
    got, _ = init_error(make_env, {"index.js": "exports.handler = async () => 1;"}, handler=handler)
    assert (got["errorType"], got["errorMessage"]) == ("Runtime.MalformedHandlerName", message)


def test_init_exception_thrown_by_user_code(make_env: MakeEnv) -> None:
    got, _ = init_error(make_env, {"index.js": "throw new TypeError('cannot start');"})
    assert (got["errorType"], got["errorMessage"]) == ("TypeError", "cannot start")
    assert got["trace"][0] == "TypeError: cannot start"


def test_top_level_await_in_esm_runs_during_init(make_env: MakeEnv) -> None:
    env = make_env(
        {
            "index.mjs": "const v = await new Promise((r) => setTimeout(() => r(41), 20));\n"
            "export const handler = async () => v + 1;"
        }
    )
    assert body(one(env)) == 42


# ---- console ----------------------------------------------------------------------------------------------

CONSOLE = """
exports.handler = async () => {
  console.log('plain', 42, { a: 1 });
  console.info('info');
  console.warn('warn');
  console.error('error');
  console.debug('debug');
  console.trace('trace');
  console.log('line one\\nline two');
  process.stdout.write('raw write\\n');
  return 1;
};
"""


def test_console_text_format(make_env: MakeEnv) -> None:
    out = one(make_env({"index.js": CONSOLE}))
    lines = app_lines(out)
    parsed = [TEXT_LINE.fullmatch(line) for line in lines[:-1]]
    assert all(parsed), lines
    assert [(m[2], m[3], m[4]) for m in parsed if m] == [
        ("req-1", "INFO", "plain 42 { a: 1 }"),
        ("req-1", "INFO", "info"),
        ("req-1", "WARN", "warn"),
        ("req-1", "ERROR", "error"),
        ("req-1", "DEBUG", "debug"),
        ("req-1", "TRACE", "trace"),
        ("req-1", "INFO", "line one\rline two"),  # one log event
    ]
    assert lines[-1] == "raw write"


def test_console_json_format_and_level_filter(make_env: MakeEnv) -> None:
    env = make_env(
        {
            "index.js": """
exports.handler = async () => {
  console.log('hello', 42);
  console.info({ structured: true });
  console.debug('filtered out');
  console.warn('careful');
  console.error(new RangeError('bad'));
  return 1;
};
"""
        },
        log_format="JSON",
        application_log_level="INFO",
    )
    records = [json.loads(line) for line in app_lines(one(env))]
    assert [(r["level"], r["message"]) for r in records[:3]] == [
        ("INFO", "hello 42"),
        ("INFO", {"structured": True}),
        ("WARN", "careful"),
    ]
    for r in records:
        assert list(r)[:3] == ["timestamp", "level", "requestId"] and r["requestId"] == "req-1"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["timestamp"])
    error = records[3]
    assert error["level"] == "ERROR"
    assert error["message"]["errorType"] == "RangeError" and error["message"]["errorMessage"] == "bad"
    assert error["message"]["stackTrace"][0] == "RangeError: bad"


def test_console_json_invoke_error(make_env: MakeEnv) -> None:
    env = make_env(
        {"index.js": "exports.handler = async () => { throw new Error('json boom'); };"}, log_format="JSON"
    )
    (line,) = app_lines(one(env))
    record = json.loads(line)
    assert record["level"] == "ERROR" and record["requestId"] == "req-1"
    assert record["message"]["errorType"] == "Error" and record["message"]["errorMessage"] == "json boom"


# ---- discovery --------------------------------------------------------------------------------------------


def test_discovery_offers_only_the_majors_installed() -> None:
    assert RUNTIME is not None
    for runtime_id, runtime in FOUND.items():
        major = runtime_id.removeprefix("nodejs").removesuffix(".x")
        assert runtime.version.split(".")[0] == major
        assert os.path.isabs(runtime.executable) and not Path(runtime.executable).is_symlink()
        assert runtime.runtime_version == f"nodejs:{major}.v{runtime.version.split('.')[1]}"
        assert runtime.host_paths == (Path(runtime.executable).resolve().parent.parent,)
        assert runtime.bootstrap_argv[-1] == "{runtime_dir}/bootstrap.cjs"
        assert "--expose-gc" not in runtime.bootstrap_argv
    for major in nodejs.SUPPORTED:
        if f"nodejs{major}.x" not in FOUND:
            assert all(
                nodejs.probe(c) is None or nodejs.probe(c).major != major  # type: ignore[union-attr]
                for c in nodejs.candidates(major)
                if os.path.exists(c)
            )


def test_runtimes_setting_maps_an_id_to_a_binary(tmp_path: Path) -> None:
    assert RUNTIME is not None
    link = tmp_path / "my-node"
    link.symlink_to(RUNTIME.executable)
    found = NodeFamily().discover({RUNTIME.id: str(link)})
    assert found[RUNTIME.id].executable == RUNTIME.executable  # the real binary, not the link
    other = next(f"nodejs{m}.x" for m in nodejs.SUPPORTED if m != MAJOR)
    assert other not in NodeFamily().discover({other: str(link)})  # wrong major: ignored
    assert RUNTIME.id not in NodeFamily().discover({RUNTIME.id: str(tmp_path / "missing")})


def test_version_manager_shim_resolves_to_the_real_binary(tmp_path: Path) -> None:
    assert RUNTIME is not None
    shim = tmp_path / "node"
    shim.write_text(f'#!/bin/sh\nexec {RUNTIME.executable} "$@"\n')
    shim.chmod(0o755)
    found = NodeFamily().discover({RUNTIME.id: str(shim)})
    assert found[RUNTIME.id].executable == RUNTIME.executable

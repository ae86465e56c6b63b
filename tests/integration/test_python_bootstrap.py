"""The Python language bootstrap against a fake Runtime API, as a real subprocess on a real interpreter.

The fake server speaks HTTP/1.1 with keep-alive, serves queued events on ``/next`` and records every request
the bootstrap makes.  Like the platform, it drains the bootstrap's stdout/stderr pipes when a request arrives,
so a test can tell what had been written *before* a POST reached the server.
"""

from __future__ import annotations

import glob
import json
import os
import queue
import re
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

BOOTSTRAP = Path(__file__).resolve().parents[2] / "src/shoal/runtimes/bootstraps/python/bootstrap.py"
API = "/2018-06-01/runtime"
WAIT = 15.0  # generous deadline for anything the bootstrap should do promptly


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    client_port: int
    stdout_before: str  # everything the bootstrap had written to stdout when this request arrived

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Event:
    request_id: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200


class OutputPipe:
    """Non-blocking reader of one of the child's output pipes."""

    def __init__(self, stream: Any) -> None:
        self.fd = stream.fileno()
        self._stream = stream  # keep the file object (and so the fd) alive
        os.set_blocking(self.fd, False)
        self.data = bytearray()
        self.closed = False

    def drain(self) -> None:
        while not self.closed:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                self.closed = True
                return
            self.data += chunk

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


class FakeRuntimeAPI:
    def __init__(self) -> None:
        self.events: queue.Queue[Event | None] = queue.Queue()
        self.requests: list[Recorded] = []
        self.cond = threading.Condition()
        self.stopping = False
        self.close_mode = ""  # "silent": drop the connection after each response; "header": say so first
        self.pipes: list[OutputPipe] = []
        self.stdout: OutputPipe | None = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _record(self, body: bytes) -> Recorded:
                with api.cond:
                    api.drain()
                    rec = Recorded(
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                        self.client_address[1],
                        api.stdout.text() if api.stdout else "",
                    )
                    api.requests.append(rec)
                    api.cond.notify_all()
                    return rec

            def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                if api.close_mode == "header":
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                if api.close_mode:
                    self.close_connection = True

            def do_GET(self) -> None:
                self._record(b"")
                if self.path != f"{API}/invocation/next":
                    self._reply(404, b"{}")
                    return
                while True:
                    try:
                        event = api.events.get(timeout=0.05)
                        break
                    except queue.Empty:
                        if api.stopping:
                            self.close_connection = True
                            return
                if event is None:
                    self.close_connection = True
                    return
                self._reply(event.status, event.body, event.headers)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self._record(body)
                self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def drain(self) -> None:
        for pipe in self.pipes:
            pipe.drain()

    def wait_for(self, predicate: Callable[[], Any], timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                self.drain()
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out; requests so far: {[(r.method, r.path) for r in self.requests]}"
                    )
                self.cond.wait(min(remaining, 0.05))

    def find(self, method: str, path: str) -> Recorded | None:
        return next((r for r in self.requests if r.method == method and r.path == path), None)

    def close(self) -> None:
        self.stopping = True
        self.server.shutdown()
        self.server.server_close()


class Runtime:
    """One bootstrap process plus its fake Runtime API."""

    def __init__(self, api: FakeRuntimeAPI, proc: subprocess.Popen[bytes], task_root: Path) -> None:
        self.api = api
        self.proc = proc
        self.task_root = task_root
        self.stdout = OutputPipe(proc.stdout)
        self.stderr = OutputPipe(proc.stderr)
        api.stdout = self.stdout
        api.pipes += [self.stdout, self.stderr]

    def send(
        self,
        event: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        status: int = 200,
    ) -> str:
        request_id = str(uuid.uuid4())
        all_headers = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "lambda-runtime-deadline-ms": str(int(time.time() * 1000) + 30_000),  # lower case on purpose
            "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:fn:live",
            "Content-Type": "application/json",
        }
        all_headers.update(headers or {})
        body = raw if raw is not None else json.dumps(event).encode()
        self.api.events.put(Event(request_id, body, all_headers, status))
        return request_id

    def result(self, request_id: str) -> Recorded:
        paths = (f"{API}/invocation/{request_id}/response", f"{API}/invocation/{request_id}/error")
        return self.api.wait_for(
            lambda: next((r for r in self.api.requests if r.method == "POST" and r.path in paths), None)
        )

    def invoke(self, event: Any = None, **kwargs: Any) -> Recorded:
        return self.result(self.send(event, **kwargs))

    def wait_exit(self, timeout: float = WAIT) -> int:
        code = self.proc.wait(timeout)
        self.api.wait_for(lambda: self.stdout.closed and self.stderr.closed)
        return code

    def output(self) -> str:
        self.api.drain()
        return self.stdout.text()

    def log_lines(self) -> list[str]:
        return self.output().split("\n")


def _interpreters() -> dict[str, str]:
    """Real interpreter binaries for the Python versions Shoal supports, where this host has them."""
    found = {}
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for minor in ("3.9", "3.10", "3.11", "3.12", "3.13"):
        candidates = sorted(glob.glob(f"{pyenv}/versions/{minor}.*/bin/python{minor}"), reverse=True)
        candidates += [f"/usr/bin/python{minor}", f"/usr/local/bin/python{minor}"]
        for path in candidates:
            if os.path.isfile(path) and os.access(path, os.X_OK):
                found[minor] = path
                break
    return found


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    started: list[Runtime] = []
    apis: list[FakeRuntimeAPI] = []

    def _start(
        files: dict[str, str],
        handler: str = "app.handler",
        env: dict[str, str] | None = None,
        python: str = sys.executable,
        script: Path = BOOTSTRAP,
    ) -> Runtime:
        task_root = tmp_path / f"task{len(started)}"
        task_root.mkdir()
        for name, source in files.items():
            path = task_root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        api = FakeRuntimeAPI()
        apis.append(api)
        full_env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": str(task_root),
            "AWS_LAMBDA_FUNCTION_NAME": "fn",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
            "AWS_REGION": "us-east-1",
        }
        full_env.update(env or {})
        proc = subprocess.Popen(
            [python, "-I", "-S", str(script)],
            cwd=task_root,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        runtime = Runtime(api, proc, task_root)
        started.append(runtime)
        return runtime

    yield _start

    for runtime in started:
        if runtime.proc.poll() is None:
            runtime.proc.kill()
        runtime.proc.wait(WAIT)
        for pipe in (runtime.proc.stdout, runtime.proc.stderr):
            if pipe is not None:
                pipe.close()
    for api in apis:
        api.close()


ECHO = {
    "app.py": """
        def handler(event, context):
            return event.get("value") if isinstance(event, dict) and "value" in event else event
    """
}


# ------------------------------------------------------------------------------------------------
# Results


def test_return_value_is_posted_as_json(start: Callable[..., Runtime]) -> None:
    rt = start(ECHO)
    rec = rt.invoke({"a": [1, 2.5, "é"], "b": {"c": None}})
    assert rec.headers["content-type"] == "application/json"
    assert rec.body == json.dumps({"a": [1, 2.5, "é"], "b": {"c": None}}).encode()
    assert rec.json() == {"a": [1, 2.5, "é"], "b": {"c": None}}


@pytest.mark.parametrize(
    ("value", "posted"), [(None, b"null"), ("hello", b'"hello"'), (42, b"42"), ([], b"[]")]
)
def test_none_str_and_scalars(start: Callable[..., Runtime], value: Any, posted: bytes) -> None:
    rt = start(ECHO)
    assert rt.invoke({"value": value}).body == posted


def test_decimal_and_bytes_results(start: Callable[..., Runtime]) -> None:
    rt = start(
        {
            "app.py": """
            from decimal import Decimal

            def handler(event, context):
                if event == "bytes":
                    return b"\\x00raw"
                return {"price": Decimal("1.10"), "n": Decimal("3"), "s": "\\x00not-a-placeholder"}
            """
        }
    )
    rec = rt.invoke("decimal")
    assert rec.body == b'{"price": 1.10, "n": 3, "s": "\\u0000not-a-placeholder"}'
    rec = rt.invoke("bytes")
    assert rec.body == b"\x00raw"
    assert rec.headers["content-type"] == "application/unknown"


def test_context_fields(start: Callable[..., Runtime]) -> None:
    rt = start(
        {
            "app.py": """
            def handler(event, context):
                return {
                    "function_name": context.function_name,
                    "function_version": context.function_version,
                    "invoked_function_arn": context.invoked_function_arn,
                    "memory_limit_in_mb": context.memory_limit_in_mb,
                    "aws_request_id": context.aws_request_id,
                    "log_group_name": context.log_group_name,
                    "log_stream_name": context.log_stream_name,
                    "identity": [
                        context.identity.cognito_identity_id,
                        context.identity.cognito_identity_pool_id,
                    ],
                    "client_context": context.client_context,
                    "tenant_id": context.tenant_id,
                    "remaining": context.get_remaining_time_in_millis(),
                    "repr": repr(context),
                    "class": type(context).__name__,
                }
            """
        }
    )
    request_id = rt.send({})
    got = rt.result(request_id).json()
    assert got["function_name"] == "fn"
    assert got["function_version"] == "$LATEST"
    assert got["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:fn:live"
    assert got["memory_limit_in_mb"] == "256"
    assert got["aws_request_id"] == request_id
    assert got["log_group_name"] == "/aws/lambda/fn"
    assert got["log_stream_name"] == "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef"
    assert got["identity"] == [None, None]
    assert got["client_context"] is None
    assert got["tenant_id"] is None
    assert 0 < got["remaining"] <= 30_000
    assert got["class"] == "LambdaContext"
    assert got["repr"] == (
        f"LambdaContext([aws_request_id={request_id},log_group_name=/aws/lambda/fn,"
        "log_stream_name=2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef,function_name=fn,"
        "memory_limit_in_mb=256,function_version=$LATEST,"
        "invoked_function_arn=arn:aws:lambda:us-east-1:123456789012:function:fn:live,client_context=None,"
        "identity=CognitoIdentity([cognito_identity_id=None,cognito_identity_pool_id=None]),tenant_id=None])"
    )


def test_remaining_time_is_floored_at_zero(start: Callable[..., Runtime]) -> None:
    rt = start(
        {"app.py": "def handler(event, context):\n    return context.get_remaining_time_in_millis()\n"}
    )
    past = str(int(time.time() * 1000) - 5_000)
    assert rt.invoke({}, headers={"lambda-runtime-deadline-ms": past}).json() == 0


def test_client_context_and_cognito_identity(start: Callable[..., Runtime]) -> None:
    rt = start(
        {
            "app.py": """
            def handler(event, context):
                cc = context.client_context
                return {
                    "client": [cc.client.installation_id, cc.client.app_title, cc.client.app_version_name,
                               cc.client.app_version_code, cc.client.app_package_name],
                    "custom": cc.custom,
                    "env": cc.env,
                    "w3c": context.w3c(),
                    "identity": [
                        context.identity.cognito_identity_id,
                        context.identity.cognito_identity_pool_id,
                    ],
                    "repr": repr(cc),
                }
            """
        }
    )
    client_context = {
        "client": {
            "installation_id": "inst",
            "app_title": "title",
            "app_version_name": "1.0",
            "app_version_code": "100",
            "app_package_name": "com.example",
        },
        "custom": {"k": "v"},
        "env": {"platform": "Android"},
        "w3c": {"traceparent": "00-abc-def-01", "other": "dropped"},
    }
    identity = {"cognitoIdentityId": "us-east-1:id", "cognitoIdentityPoolId": "us-east-1:pool"}
    got = rt.invoke(
        {},
        headers={
            "Lambda-Runtime-Client-Context": json.dumps(client_context),
            "Lambda-Runtime-Cognito-Identity": json.dumps(identity),
        },
    ).json()
    assert got["client"] == ["inst", "title", "1.0", "100", "com.example"]
    assert got["custom"] == {"k": "v"}
    assert got["env"] == {"platform": "Android"}
    assert got["w3c"] == {"traceparent": "00-abc-def-01"}
    assert got["identity"] == ["us-east-1:id", "us-east-1:pool"]
    assert got["repr"] == (
        "ClientContext([custom={'k': 'v'},env={'platform': 'Android'},client=Client([installation_id=inst,"
        "app_title=title,app_version_name=1.0,app_version_code=100,app_package_name=com.example])])"
    )


def test_invalid_client_context_is_a_context_unmarshal_error(start: Callable[..., Runtime]) -> None:
    rt = start(ECHO)
    rec = rt.invoke({}, headers={"Lambda-Runtime-Client-Context": "{nope"})
    assert rec.path.endswith("/error")
    assert rec.json()["errorType"] == "Runtime.LambdaContextUnmarshalError"
    assert rec.json()["errorMessage"].startswith(
        "Unable to parse Client Context JSON: Expecting property name"
    )


def test_trace_id_env_var_is_set_and_cleared(start: Callable[..., Runtime]) -> None:
    rt = start(
        {"app.py": "import os\ndef handler(event, context):\n    return os.environ.get('_X_AMZN_TRACE_ID')\n"}
    )
    trace = "Root=1-5e34a614-10bdxmplf1fb44f07bc535a1;Parent=07f5xmpl2d1f6f85;Sampled=1"
    assert rt.invoke({}, headers={"Lambda-Runtime-Trace-Id": trace}).json() == trace
    assert rt.invoke({}).json() is None


def test_warm_reuse_keeps_globals_and_one_keepalive_connection(start: Callable[..., Runtime]) -> None:
    rt = start(
        {
            "app.py": """
            COUNT = 0

            def handler(event, context):
                global COUNT
                COUNT += 1
                return COUNT
            """
        }
    )
    assert [rt.invoke({}).json() for _ in range(3)] == [1, 2, 3]
    rt.api.wait_for(lambda: len([r for r in rt.api.requests if r.method == "GET"]) == 4)
    assert len({r.client_port for r in rt.api.requests}) == 1, (
        "every request should use one persistent connection"
    )


@pytest.mark.parametrize("mode", ["silent", "header"])
def test_reconnects_when_the_server_closes_connections(start: Callable[..., Runtime], mode: str) -> None:
    rt = start(ECHO)
    rt.api.close_mode = mode
    assert [rt.invoke({"value": n}).json() for n in range(3)] == [0, 1, 2]
    assert len({r.client_port for r in rt.api.requests}) > 1


def test_large_event_and_response(start: Callable[..., Runtime]) -> None:
    rt = start(ECHO)
    big = "x" * (5 * 1024 * 1024)
    rec = rt.invoke({"value": {"big": big}})
    assert rec.json() == {"big": big}


def test_runs_from_a_precompiled_pyc(start: Callable[..., Runtime], tmp_path: Path) -> None:
    """Compiling the 1,000-line script costs milliseconds per cold start; the platform may run a .pyc."""
    import py_compile

    pyc = Path(
        py_compile.compile(str(BOOTSTRAP), cfile=str(tmp_path / "cache" / "bootstrap.pyc"), doraise=True)
    )
    rt = start({"app.py": "import sys\ndef handler(event, context):\n    return sys.path\n"}, script=pyc)
    path = rt.invoke({}).json()
    assert path[0] == str(rt.task_root)
    assert str(pyc.parent) not in path


@pytest.mark.parametrize(
    ("handler", "files"),
    [
        ("src/app.handler", {"src/app.py": "def handler(event, context):\n    return __name__\n"}),
        (
            "pkg.mod.fn",
            {"pkg/__init__.py": "", "pkg/mod.py": "def fn(event, context):\n    return __name__\n"},
        ),
    ],
)
def test_handler_path_formats(start: Callable[..., Runtime], handler: str, files: dict[str, str]) -> None:
    rt = start(files, handler=handler)
    assert rt.invoke({}).json() == handler.rsplit(".", 1)[0].replace("/", ".")


def test_sys_path_and_lean_start(start: Callable[..., Runtime]) -> None:
    rt = start(
        {
            "app.py": """
            import sys

            LOADED = sorted(sys.modules)

            def handler(event, context):
                return {"path": sys.path, "loaded": LOADED, "exit": callable(exit)}
            """
        }
    )
    got = rt.invoke({}).json()
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    path = got["path"]
    assert path[:3] == [str(rt.task_root), f"/opt/python/lib/{version}/site-packages", "/opt/python"]
    assert path[-1] == os.path.join(sys.base_prefix, "lib", version, "site-packages")  # -I -S: no venv
    assert str(BOOTSTRAP.parent) not in path
    assert any(p.endswith(f"lib/{version}") for p in path[3:-1]), "the interpreter's stdlib stays importable"
    heavy = {
        "json",
        "logging",
        "http",
        "http.client",
        "socket",
        "urllib",
        "email",
        "typing",
        "traceback",
        "datetime",
        "dataclasses",
        "re",
        "enum",
        "importlib",
        "site",
    }
    assert heavy.isdisjoint(got["loaded"]), heavy.intersection(got["loaded"])
    assert got["exit"] is True


# ------------------------------------------------------------------------------------------------
# Init errors


INIT_ERRORS = [
    pytest.param(
        "app",
        {"app.py": "def handler(e, c):\n    pass\n"},
        "Runtime.MalformedHandlerName",
        "Bad handler 'app': not enough values to unpack (expected 2, got 1)",
        id="malformed",
    ),
    pytest.param(
        "app.handler",
        {"app.py": "import not_installed_xyz\n"},
        "Runtime.ImportModuleError",
        "Unable to import module 'app': No module named 'not_installed_xyz'",
        id="import-error",
    ),
    pytest.param(
        "missing.handler",
        {},
        "Runtime.ImportModuleError",
        "Unable to import module 'missing': No module named 'missing'",
        id="no-module",
    ),
    pytest.param(
        "app.nope",
        {"app.py": "def handler(e, c):\n    pass\n"},
        "Runtime.HandlerNotFound",
        "Handler 'nope' missing on module 'app'",
        id="handler-not-found",
    ),
    pytest.param(
        "sys.handler",
        {},
        "Runtime.BuiltInModuleConflict",
        "Cannot use built-in module sys as a handler module",
        id="builtin-conflict",
    ),
]


@pytest.mark.parametrize(("handler", "files", "error_type", "message"), INIT_ERRORS)
def test_init_errors(
    start: Callable[..., Runtime], handler: str, files: dict[str, str], error_type: str, message: str
) -> None:
    rt = start(files, handler=handler)
    rec = rt.api.wait_for(lambda: rt.api.find("POST", f"{API}/init/error"))
    assert rec.headers["lambda-runtime-function-error-type"] == error_type
    assert rec.json() == {"errorMessage": message, "errorType": error_type, "requestId": "", "stackTrace": []}
    assert rt.wait_exit() == 1
    assert rt.api.find("GET", f"{API}/invocation/next") is None, "init runs before the first /next"
    lines = rt.log_lines()
    assert re.fullmatch(
        r"\[WARNING\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t\tLAMBDA_WARNING: Unhandled exception\. .*",
        lines[0],
    )
    assert f"[ERROR] {error_type}: {message}\rTraceback (most recent call last):" in lines


def test_init_syntax_error(start: Callable[..., Runtime]) -> None:
    rt = start({"app.py": "def handler(event, context):\n    return (\n"})
    rec = rt.api.wait_for(lambda: rt.api.find("POST", f"{API}/init/error"))
    body = rec.json()
    assert rec.headers["lambda-runtime-function-error-type"] == "Runtime.UserCodeSyntaxError"
    assert body["errorType"] == "Runtime.UserCodeSyntaxError"
    assert re.fullmatch(r"Syntax error in module 'app': .+ \(app\.py, line \d\)", body["errorMessage"])
    assert len(body["stackTrace"]) == 1 and body["stackTrace"][0].startswith(
        f'  File "{rt.task_root}/app.py" Line '
    )
    assert rt.wait_exit() == 1
    assert any(
        line.startswith("[ERROR] Runtime.UserCodeSyntaxError: Syntax error in module 'app'")
        for line in rt.log_lines()
    )


def test_init_exception_in_module_code(start: Callable[..., Runtime]) -> None:
    rt = start({"app.py": "x = 1\nraise ValueError('broken config')\n"})
    rec = rt.api.wait_for(lambda: rt.api.find("POST", f"{API}/init/error"))
    body = rec.json()
    assert rec.headers["lambda-runtime-function-error-type"] == "ValueError"
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "broken config"
    assert body["requestId"] == ""
    assert (
        body["stackTrace"][-1] == f'  File "{rt.task_root}/app.py", line 2, in <module>\n'
        "    raise ValueError('broken config')\n"
    )
    assert not any("bootstrap.py" in entry for entry in body["stackTrace"])
    assert rt.wait_exit() == 1
    assert "[ERROR] ValueError: broken config\rTraceback (most recent call last):\r" in rt.output()


# ------------------------------------------------------------------------------------------------
# Invocation errors


def test_handler_exception(start: Callable[..., Runtime]) -> None:
    rt = start(
        {
            "app.py": """
            def helper():
                raise KeyError('x')

            def handler(event, context):
                helper()
            """
        }
    )
    request_id = rt.send({})
    rec = rt.result(request_id)
    assert rec.path == f"{API}/invocation/{request_id}/error"
    body = rec.json()
    app = f"{rt.task_root}/app.py"
    assert body == {
        "errorMessage": "'x'",
        "errorType": "KeyError",
        "requestId": request_id,
        "stackTrace": [
            f'  File "{app}", line 6, in handler\n    helper()\n',
            f"  File \"{app}\", line 3, in helper\n    raise KeyError('x')\n",
        ],
    }
    # awslambdaric sends no error-type header on invocation errors, but an X-Ray error cause
    assert "lambda-runtime-function-error-type" not in rec.headers
    cause = json.loads(rec.headers["lambda-runtime-function-xray-error-cause"])
    assert cause["exceptions"][0]["type"] == "KeyError"
    assert cause["exceptions"][0]["stack"][0] == {"label": "handler", "path": app, "line": 6}
    # logged as one line before the POST; inner newlines are \r, indentation is NO-BREAK SPACE like the RIC
    nb = "\u00a0"
    expected = (
        f"[ERROR] KeyError: 'x'\rTraceback (most recent call last):\r"
        f'{nb * 2}File "{app}", line 6, in handler\r{nb * 4}helper()\r'
        f"{nb * 2}File \"{app}\", line 3, in helper\r{nb * 4}raise KeyError('x')\n"
    )
    assert expected in rec.stdout_before
    # and the runtime keeps serving
    assert rt.invoke({}).json()["errorType"] == "KeyError"


def test_marshal_error(start: Callable[..., Runtime]) -> None:
    rt = start({"app.py": "def handler(event, context):\n    return {'s': {1, 2}}\n"})
    rec = rt.invoke({})
    assert rec.path.endswith("/error")
    assert rec.json()["errorType"] == "Runtime.MarshalError"
    assert (
        rec.json()["errorMessage"]
        == "Unable to marshal response: Object of type set is not JSON serializable"
    )
    assert rec.json()["stackTrace"] == []
    assert (
        "[ERROR] Runtime.MarshalError: Unable to marshal response: Object of type set is not JSON "
        "serializable\rTraceback (most recent call last):\n"
    ) in rec.stdout_before


def test_unmarshal_error(start: Callable[..., Runtime]) -> None:
    rt = start(ECHO)
    rec = rt.invoke(raw=b"{not json")
    assert rec.json()["errorType"] == "Runtime.UnmarshalError"
    assert rec.json()["errorMessage"] == (
        "Unable to unmarshal input: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    )


def test_sys_exit_in_handler_ends_the_process(start: Callable[..., Runtime]) -> None:
    """awslambdaric does not catch SystemExit: the runtime exits (the platform reports Runtime.ExitError)."""
    rt = start({"app.py": "import sys\ndef handler(event, context):\n    print('bye')\n    sys.exit(3)\n"})
    rt.send({})
    assert rt.wait_exit() == 3
    assert not [r for r in rt.api.requests if r.method == "POST"]
    assert "bye\n" in rt.output()


def test_next_failure_exits(start: Callable[..., Runtime]) -> None:
    rt = start(ECHO)
    rt.send(raw=b'{"errorType":"InternalServerError"}', status=500)
    assert rt.wait_exit() == 1


def test_hostile_handler_replacing_stdout_and_closing_fd1(start: Callable[..., Runtime]) -> None:
    rt = start(
        {
            "app.py": """
            import io, logging, os, sys

            def handler(event, context):
                if event == "break":
                    sys.stdout = io.StringIO()
                    os.close(1)
                    return "broken"
                try:  # fd 1 must not have been reused for the bootstrap's new connection
                    os.write(1, b"GARBAGE")
                except OSError:
                    pass
                logging.warning("still logging")
                raise RuntimeError("after")
            """
        }
    )
    rt.api.close_mode = "silent"  # the bootstrap reconnects after fd 1 was closed...
    assert rt.invoke("break").json() == "broken"
    rt.api.close_mode = ""  # ...and keeps that connection
    rec = rt.invoke("again")
    assert rec.json()["errorType"] == "RuntimeError"
    assert "\tstill logging\n" in rec.stdout_before
    assert "[ERROR] RuntimeError: after\r" in rec.stdout_before
    assert rt.invoke("third").json()["errorType"] == "RuntimeError"


# ------------------------------------------------------------------------------------------------
# Output and logging


def test_print_output_is_in_the_pipe_before_the_post(start: Callable[..., Runtime]) -> None:
    rt = start(
        {
            "app.py": """
            import sys

            def handler(event, context):
                print("hello from handler")
                print("partial line", end="")
                sys.stderr.write("to stderr\\n")
                return "ok"
            """
        }
    )
    rec = rt.invoke({})
    assert "hello from handler\npartial line" in rec.stdout_before
    assert "to stderr\n" in rt.stderr.text()


def test_text_logging_format(start: Callable[..., Runtime]) -> None:
    rt = start(
        {
            "app.py": """
            import logging

            logger = logging.getLogger(__name__)

            def handler(event, context):
                logger.info("hidden by default")
                logger.warning("first line\\nsecond line")
                try:
                    {}["k"]
                except KeyError:
                    logger.exception("failed")
                context.log("via context\\nlog")
                return [h.__class__.__name__ for h in logging.getLogger().handlers]
            """
        }
    )
    request_id = rt.send({})
    rec = rt.result(request_id)
    assert rec.json() == ["LambdaLoggerHandler"]
    lines = rec.stdout_before.split("\n")
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert not any("hidden by default" in line for line in lines)
    assert any(
        re.fullmatch(rf"\[WARNING\]\t{stamp}\t{request_id}\tfirst line\rsecond line", line) for line in lines
    )
    exc = next(line for line in lines if line.startswith("[ERROR]"))
    assert re.fullmatch(
        rf"\[ERROR\]\t{stamp}\t{request_id}\tfailed\rTraceback \(most recent call last\):\r.*"
        r"\rKeyError: 'k'",
        exc,
    )
    assert "via context\rlog" in lines


def test_basic_config_is_a_no_op_like_on_aws(start: Callable[..., Runtime]) -> None:
    rt = start(
        {
            "app.py": """
            import logging

            logging.basicConfig(level=logging.INFO, format="%(message)s")

            def handler(event, context):
                logging.info("info stays hidden")
                logging.error("error shows")
                return len(logging.getLogger().handlers)
            """
        }
    )
    rec = rt.invoke({})
    assert rec.json() == 1
    assert "info stays hidden" not in rec.stdout_before + rt.stderr.text()
    assert "\terror shows\n" in rec.stdout_before


def test_log_level_from_env(start: Callable[..., Runtime]) -> None:
    rt = start(
        {
            "app.py": "import logging\n"
            "def handler(e, c):\n    logging.getLogger().debug('dbg')\n    return 1\n"
        },
        env={"AWS_LAMBDA_LOG_LEVEL": "DEBUG"},
    )
    rec = rt.invoke({})
    assert any(
        line.startswith("[DEBUG]\t") and line.endswith("\tdbg") for line in rec.stdout_before.split("\n")
    )


def test_json_log_format(start: Callable[..., Runtime]) -> None:
    rt = start(
        {
            "app.py": """
            import logging

            logging.getLogger().info("at init")

            def handler(event, context):
                logging.getLogger("app").info("hi %s", "there", extra={"order": 7})
                logging.getLogger().debug("filtered")
                raise ValueError("boom")
            """
        },
        env={"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"},
    )
    request_id = rt.send({})
    rec = rt.result(request_id)
    records = [json.loads(line) for line in rec.stdout_before.split("\n") if line]
    init, info, error = records
    assert init["message"] == "at init" and init["requestId"] == "" and init["level"] == "INFO"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", info["timestamp"])
    assert {k: v for k, v in info.items() if k != "timestamp"} == {
        "level": "INFO",
        "message": "hi there",
        "logger": "app",
        "requestId": request_id,
        "order": 7,
    }
    assert list(error) == ["timestamp", "level", "errorMessage", "errorType", "requestId", "stackTrace"]
    assert (
        error["level"] == "ERROR" and error["errorType"] == "ValueError" and error["errorMessage"] == "boom"
    )
    assert error["requestId"] == request_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", error["timestamp"])
    assert error["stackTrace"] == rec.json()["stackTrace"]


def test_json_init_error_is_logged_as_json(start: Callable[..., Runtime]) -> None:
    rt = start({}, handler="nothere.handler", env={"AWS_LAMBDA_LOG_FORMAT": "JSON"})
    assert rt.wait_exit() == 1
    warning, error = (json.loads(line) for line in rt.output().split("\n") if line)
    assert warning["level"] == "WARNING" and warning["message"].startswith(
        "LAMBDA_WARNING: Unhandled exception."
    )
    assert warning["logger"] == "root" and warning["requestId"] == ""
    assert error["errorType"] == "Runtime.ImportModuleError" and error["requestId"] == ""


# ------------------------------------------------------------------------------------------------
# Every supported interpreter this host has


@pytest.mark.parametrize("minor", ["3.9", "3.10", "3.11", "3.12", "3.13"])
def test_supported_interpreters(start: Callable[..., Runtime], minor: str) -> None:
    python = _interpreters().get(minor)
    if python is None:
        pytest.skip(f"no python{minor} on this host")
    rt = start(
        {
            "app.py": """
            import logging, sys

            def handler(event, context):
                logging.warning("w")
                if event == "fail":
                    raise KeyError("x")
                return {"v": "%d.%d" % sys.version_info[:2], "e": event}
            """
        },
        python=python,
    )
    assert rt.invoke("ok").json() == {"v": minor, "e": "ok"}
    rec = rt.invoke("fail")
    assert rec.json()["errorType"] == "KeyError"
    assert rec.json()["stackTrace"][0].startswith(f'  File "{rt.task_root}/app.py", line 7, in handler')

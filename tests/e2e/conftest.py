"""End-to-end fixtures: one real ``shoal server`` per test session, boto3 / raw-HTTP clients against it.

Everything here talks to Shoal only over the wire, exactly as a client of AWS Lambda would.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from tests.e2e._server import free_port, make_zip

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/lambda-role"
START_DEADLINE = 30.0  # seconds for the server to answer its first request
STOP_DEADLINE = 15.0  # seconds between SIGTERM and SIGKILL
FIXTURES = Path(__file__).with_name("fixtures")


def function_arn(name: str, qualifier: str | None = None) -> str:
    base = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{base}:{qualifier}" if qualifier else base


def _installed_runtime() -> str:
    for candidate in ("python3.12", "python3.11"):
        if shutil.which(candidate):
            return candidate
    pytest.exit("neither python3.12 nor python3.11 is installed on this host", returncode=3)
    raise AssertionError("unreachable")


RUNTIME = _installed_runtime()

_counter = itertools.count(1)
_SESSION_TAG = uuid.uuid4().hex[:6]


def unique_name(prefix: str = "fn") -> str:
    """A function name no other test of this session uses (≤64 chars, AWS's pattern)."""
    return f"{prefix[:40]}-{_SESSION_TAG}-{next(_counter)}"


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def fixture_source(name: str) -> str:
    return (FIXTURES / name).read_text()


def error_of(exc: ClientError) -> tuple[int, str, str]:
    """(HTTP status, error code, message) of a botocore ClientError."""
    resp = exc.response
    return (
        resp["ResponseMetadata"]["HTTPStatusCode"],
        resp["Error"]["Code"],
        resp["Error"].get("Message", ""),
    )


def raw_request(
    endpoint: str,
    method: str,
    path: str,
    *,
    json_body: Any = None,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30,
) -> requests.Response:
    """An unsigned HTTP request that bypasses botocore's client-side validation."""
    import json as _json

    hdrs = {"Content-Type": "application/json", **(headers or {})}
    body = data if data is not None else (None if json_body is None else _json.dumps(json_body).encode())
    return requests.request(method, endpoint + path, data=body, headers=hdrs, timeout=timeout)


def assert_raw_error(resp: requests.Response, status: int, code: str, message: str | None = None) -> str:
    """Checks the AWS error envelope (§1.1) and returns the message."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers.get("x-amzn-RequestId"), dict(resp.headers)
    error_type = resp.headers.get("x-amzn-ErrorType", "").split(":")[0]
    assert error_type == code, (error_type, resp.text)
    body = resp.json()
    got = body.get("message", body.get("Message"))
    assert isinstance(got, str), body
    if status < 500:
        assert body.get("Type") == "User", body
    if message is not None:
        assert got == message, got
    return got


# ---- the server --------------------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, session id, start time) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[3]), int(fields[19])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _all_pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def _server_processes(server_pid: int, data_dir: str) -> dict[int, int]:
    """Live (non-zombie) processes that belong to the server: its descendants, its session (it runs in a
    session of its own), and anything whose command line names its data dir. Maps pid → start time."""
    stats = {pid: st for pid in _all_pids() if pid != os.getpid() and (st := _proc_stat(pid)) is not None}
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = [server_pid]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            if child not in found:
                found.add(child)
                todo.append(child)
    for pid, (_, _, sid, _) in stats.items():
        if sid == server_pid or data_dir in _cmdline(pid):
            found.add(pid)
    found.add(server_pid)
    return {pid: stats[pid][3] for pid in found if pid in stats and stats[pid][0] != "Z"}


def _still_alive(procs: dict[int, int]) -> dict[int, str]:
    alive = {}
    for pid, start in procs.items():
        st = _proc_stat(pid)
        if st is not None and st[0] != "Z" and st[3] == start:  # same start time: not a reused pid
            alive[pid] = _cmdline(pid)
    return alive


class ShoalServer:
    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = ""

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> None:
        for _attempt in range(3):  # a port taken between choosing and binding: try another one
            port = free_port()
            self.endpoint = f"http://127.0.0.1:{port}"
            log = self.log_path.open("ab")
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "shoal",
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--data-dir",
                    str(self.data_dir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            log.close()
            if self._wait_ready():
                return
            self._stop()
        raise RuntimeError(f"shoal server did not start; its log:\n{self.log_text()}")

    def _wait_ready(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + START_DEADLINE
        url = f"{self.endpoint}/2016-08-19/account-settings"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if "Shoal listening on" in self.log_text():
                try:
                    r = requests.get(url, timeout=2)
                except requests.RequestException:
                    r = None
                # the process must still be alive after answering: otherwise someone else owns the port
                if r is not None and r.status_code == 200 and self.proc.poll() is None:
                    return True
            time.sleep(0.05)  # polling interval with a deadline, not a fixed wait
        return False

    def _stop(self) -> bool:
        """SIGTERM, wait up to STOP_DEADLINE, then SIGKILL. True when SIGTERM sufficed."""
        if self.proc is None or self.proc.poll() is not None:
            return True
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_DEADLINE)
            return True
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return False

    def stop_and_check(self) -> None:
        """SIGTERM, wait, SIGKILL; then no process the server started may remain."""
        assert self.proc is not None
        marker = str(self.data_dir)
        known = _server_processes(self.proc.pid, marker) if self.proc.poll() is None else {}
        graceful = self._stop()
        deadline = time.monotonic() + 5.0
        while True:
            left = _still_alive(known)
            left.update(
                (pid, _cmdline(pid))
                for pid in _server_processes(self.proc.pid, marker)
                if pid != self.proc.pid
            )
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        for pid in left:  # clean up what leaked (only processes of this server), then fail
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        assert not left, f"processes left behind by the Shoal server: {left}"
        assert graceful, f"the Shoal server ignored SIGTERM for {STOP_DEADLINE} s and had to be killed"


_RUNNING: list[ShoalServer] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach what the server logged during a failed test to its report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and _RUNNING:
        server = _RUNNING[0]
        start = getattr(item, "_shoal_log_offset", 0)
        text = server.log_text()[start:]
        if text.strip():
            report.sections.append(("shoal server log", text[-20000:]))


@pytest.fixture(autouse=True)
def _mark_log_offset(request: pytest.FixtureRequest) -> None:
    if _RUNNING:
        request.node._shoal_log_offset = len(_RUNNING[0].log_text())


@pytest.fixture(scope="session")
def shoal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalServer]:
    base = tmp_path_factory.mktemp("shoal-e2e")
    server = ShoalServer(base / "data", base / "server.log")
    server.start()
    _RUNNING.append(server)
    try:
        yield server
    finally:
        _RUNNING.remove(server)
        server.stop_and_check()


@pytest.fixture(scope="session")
def endpoint(shoal_server: ShoalServer) -> str:
    return shoal_server.endpoint


@pytest.fixture(scope="session")
def data_dir(shoal_server: ShoalServer) -> Path:
    return shoal_server.data_dir


def new_client(endpoint: str, read_timeout: int = 70) -> Any:
    """A boto3 Lambda client that never retries (``max_attempts`` alone would still allow one retry of a 5xx:
    botocore counts it as retries after the first attempt), so no invoke is ever run twice."""
    return boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        config=BotoConfig(
            retries={"total_max_attempts": 1, "mode": "standard"},
            read_timeout=read_timeout,
            connect_timeout=10,
        ),
    )


@pytest.fixture(scope="session")
def logs_client(endpoint: str) -> Any:
    return boto3.client(
        "logs",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )


@pytest.fixture(scope="session")
def lambda_client(endpoint: str) -> Any:
    return new_client(endpoint)


WAIT_ACTIVE = {"Delay": 1, "MaxAttempts": 30}


def wait_active(client: Any, name: str) -> None:
    client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=WAIT_ACTIVE)


def wait_updated(client: Any, name: str) -> None:
    client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=WAIT_ACTIVE)


@pytest.fixture(scope="session")
def cleanup_names(lambda_client: Any) -> Iterator[set[str]]:
    """Functions created outside ``make_function`` register here to be deleted at session end."""
    names: set[str] = set()
    yield names
    for name in names:
        try:
            lambda_client.delete_function(FunctionName=name)
        except ClientError:
            pass


MakeFunction = Callable[..., dict[str, Any]]


@pytest.fixture
def make_function(lambda_client: Any) -> Iterator[MakeFunction]:
    """``make_function(name, files, handler, runtime=RUNTIME, wait=True, **kw)`` → CreateFunction response.

    ``files`` maps file names to sources (or is raw zip bytes). Waits for Active with the
    ``function_active_v2`` waiter unless ``wait=False``; deletes the function at teardown.
    """
    created: list[str] = []

    def make(
        name: str,
        files: Mapping[str, str | bytes] | bytes,
        handler: str = "app.handler",
        runtime: str = RUNTIME,
        *,
        wait: bool = True,
        **kw: Any,
    ) -> dict[str, Any]:
        zip_bytes = files if isinstance(files, bytes) else make_zip(files)
        resp = lambda_client.create_function(
            FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler, Code={"ZipFile": zip_bytes}, **kw
        )
        created.append(name)
        if wait:
            wait_active(lambda_client, name)
        return resp

    yield make
    for name in created:
        try:
            lambda_client.delete_function(FunctionName=name)
        except ClientError:
            pass

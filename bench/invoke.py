#!/usr/bin/env python3
"""Shoal invoke benchmark: cold starts, warm latency, throughput, memory — as ratios against a physical floor.

    python bench/invoke.py [--quick] [--json bench/results/invoke.json] [--py-spy DIR]

Starts its own ``shoal server`` on a free loopback port with a temporary data dir, measures, prints a table,
and (with ``--json``) writes the numbers with the machine they were taken on. The server and its environments
are stopped (SIGTERM, then SIGKILL) and the temporary directory removed on every exit path, Ctrl-C included.
See ``bench/README.md`` for what each number means.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import HOST, die_with_parent, free_port, machine_info, shoal_module, stat_fields, summarize

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/bench"
NO_OP = "def handler(event, context):\n    return None\n"
PREFERRED_RUNTIME = "python3.12"
WARMUP_INVOKES = 50
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_INIT_RE = re.compile(r"Init Duration: ([0-9.]+) ms")
_CL_RE = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


# ------------------------------------------------------------------------------------------------------------
# /proc: memory and CPU of the server, its environments, this client and the machine
# ------------------------------------------------------------------------------------------------------------


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _start_time(pid: int) -> int | None:
    fields = stat_fields(pid)
    return int(fields[19]) if fields else None


def vm_rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = stat_fields(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / _CLK_TCK


def machine_busy() -> tuple[float, float, float]:
    """(busy, total, irq + softirq) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    values += [0] * (8 - len(values))
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total, values[5] + values[6]


@dataclass
class CpuWindow:
    """CPU used by the server, its environments, this client and the whole machine over a time window."""

    server: int
    env_pids: list[int]
    extra_client: Callable[[], float] | None = None
    _t0: float = 0.0
    _server0: float = 0.0
    _envs0: float = 0.0
    _client0: float = 0.0
    _machine0: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def _client(self) -> float:
        t = os.times()
        return t.user + t.system + (self.extra_client() if self.extra_client else 0.0)

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._server0 = cpu_seconds([self.server])
        self._envs0 = cpu_seconds(self.env_pids)
        self._client0 = self._client()
        self._machine0 = machine_busy()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._t0
        busy, total, irq = machine_busy()
        return {
            "server_cpu_pct": 100 * (cpu_seconds([self.server]) - self._server0) / wall,
            "envs_cpu_pct": 100 * (cpu_seconds(self.env_pids) - self._envs0) / wall,
            "client_cpu_pct": 100 * (self._client() - self._client0) / wall,
            "machine_busy_pct": 100 * (busy - self._machine0[0]) / max(1.0, total - self._machine0[1]),
            # interrupt and softirq time (loopback TCP is mostly processed here), charged to no process
            "irq_cpu_pct": 100 * (irq - self._machine0[2]) / _CLK_TCK / wall,
            "cores": len(os.sched_getaffinity(0)),
        }


# ------------------------------------------------------------------------------------------------------------
# event loops and HTTP/1.1 framing (Content-Length only; enough for the server under test and the floor)
# ------------------------------------------------------------------------------------------------------------


def run_async(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def take_messages(buf: bytearray) -> Iterator[bytes]:
    """Complete HTTP messages (head + Content-Length body) at the front of ``buf``, removed from it."""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        match = _CL_RE.search(buf, 0, end + 2)
        total = end + 4 + (int(match.group(1)) if match else 0)
        if len(buf) < total:
            return
        message = bytes(buf[:total])
        del buf[:total]
        yield message


def invoke_request(name: str, port: int, extra: str = "") -> bytes:
    return (
        f"POST /2015-03-31/functions/{name}/invocations HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: 2\r\n{extra}\r\n{{}}"
    ).encode()


# ------------------------------------------------------------------------------------------------------------
# the physical floor: a minimal HTTP echo, and a forwarder in front of it (client → hop → echo → hop → client)
# ------------------------------------------------------------------------------------------------------------

_ECHO_REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\nnull"


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        for _ in take_messages(self.buf):
            self.transport.write(_ECHO_REPLY)


class _Upstream(asyncio.Protocol):
    def __init__(self, downstream: _Hop) -> None:
        self.downstream = downstream
        self.buf = bytearray()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        for message in take_messages(self.buf):
            if self.downstream.transport is not None:
                self.downstream.transport.write(message)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.downstream.transport is not None:
            self.downstream.transport.close()


class _Hop(asyncio.Protocol):
    """Forwards each request over its own keep-alive connection to the echo process (like one environment per
    concurrent client), and the reply back."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.transport: Any = None
        self.up: _Upstream | None = None
        self.pending: list[bytes] = []
        self.buf = bytearray()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, up = await loop.create_connection(lambda: _Upstream(self), HOST, self.upstream_port)
        self.up = up
        for message in self.pending:
            up.transport.write(message)
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        for message in take_messages(self.buf):
            if self.up is None:
                self.pending.append(message)
            else:
                self.up.transport.write(message)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.up is not None:
            self.up.transport.close()


async def _serve_floor(kind: str, upstream: int) -> None:
    loop = asyncio.get_running_loop()
    factory: Callable[[], asyncio.Protocol] = _Echo if kind == "echo" else (lambda: _Hop(upstream))
    server = await loop.create_server(factory, HOST, 0, backlog=256)
    print(server.sockets[0].getsockname()[1], flush=True)
    # Ends when the parent closes our stdin (or kills us); bounded so that nothing outlives a lost parent.
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


# ------------------------------------------------------------------------------------------------------------
# clients
# ------------------------------------------------------------------------------------------------------------


class _Client(asyncio.Protocol):
    """One keep-alive connection; one request in flight."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.transport: Any = None
        self.error_sample: str | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        with contextlib.suppress(OSError):
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        for message in take_messages(self.buf):
            status = int(message[9:12])
            if status != 200 and self.error_sample is None:
                self.error_sample = message[:2000].decode("latin-1")
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    def request(self, data: bytes) -> asyncio.Future[int]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds
    errors: int = 0
    elapsed: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    client_cpu_s: float = 0.0
    error_sample: str | None = None  # the first non-200 answer, head and body


async def _connect(port: int, n: int) -> list[_Client]:
    loop = asyncio.get_running_loop()
    return [(await loop.create_connection(_Client, HOST, port))[1] for _ in range(n)]


async def _drive(
    clients: list[_Client], request: bytes, duration: float, max_requests: int, window: CpuWindow | None
) -> LoadResult:
    result = LoadResult()
    lat = result.latencies
    perf = time.perf_counter
    budget = [max_requests]

    async def worker(client: _Client) -> None:
        while budget[0] > 0:
            t0 = perf()
            if t0 >= deadline:
                return
            budget[0] -= 1
            status = await client.request(request)
            lat.append(perf() - t0)
            if status != 200:
                result.errors += 1
                if result.error_sample is None:
                    result.error_sample = client.error_sample

    if window is not None:
        window.start()
    start = perf()
    deadline = start + duration
    try:
        await asyncio.wait_for(asyncio.gather(*(worker(c) for c in clients)), duration + 60)
    finally:
        result.elapsed = perf() - start
        if window is not None:
            result.cpu = window.stop()
        for client in clients:
            client.transport.close()
    return result


async def load_asyncio(
    port: int,
    request: bytes,
    concurrency: int,
    duration: float,
    max_requests: int,
    window: CpuWindow | None = None,
) -> LoadResult:
    clients = await _connect(port, concurrency)
    return await _drive(clients, request, duration, max_requests, window)


def load_threads(
    port: int,
    request: bytes,
    concurrency: int,
    duration: float,
    max_requests: int,
    window: CpuWindow | None = None,
) -> LoadResult:
    """One thread per client, each a blocking keep-alive socket (the GIL is shared with the other clients)."""
    result = LoadResult()
    barrier = threading.Barrier(concurrency + 1, timeout=30)
    lock = threading.Lock()
    budget = [max_requests]
    deadline = [0.0]

    def worker() -> None:
        sock = socket.create_connection((HOST, port), timeout=60)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        mine: list[float] = []
        errors = 0
        try:
            barrier.wait()
            while True:
                t0 = time.perf_counter()
                if t0 >= deadline[0]:
                    break
                with lock:
                    if budget[0] <= 0:
                        break
                    budget[0] -= 1
                sock.sendall(request)
                message = None
                while message is None:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("server closed the connection")
                    buf += chunk
                    message = next(take_messages(buf), None)
                mine.append(time.perf_counter() - t0)
                if int(message[9:12]) != 200:
                    errors += 1
                    if result.error_sample is None:
                        result.error_sample = message[:2000].decode("latin-1")
        finally:
            sock.close()
            with lock:
                result.latencies.extend(mine)
                result.errors += errors

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    if window is not None:
        window.start()
    start = time.perf_counter()
    deadline[0] = start + duration
    barrier.wait()
    for t in threads:
        t.join(duration + 60)
    result.elapsed = time.perf_counter() - start
    if window is not None:
        result.cpu = window.stop()
    return result


def _proc_worker(
    port: int,
    request: bytes,
    concurrency: int,
    duration: float,
    max_requests: int,
    ready: Any,
    go: Any,
    out: Any,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us

    async def main() -> None:
        clients = await _connect(port, concurrency)
        ready.put(True)
        await asyncio.get_running_loop().run_in_executor(None, go.wait, 30)
        t = os.times()
        result = await _drive(clients, request, duration, max_requests, None)
        t2 = os.times()
        result.client_cpu_s = (t2.user + t2.system) - (t.user + t.system)
        out.put((result.latencies, result.errors, result.elapsed, result.client_cpu_s, result.error_sample))

    run_async(main())


def load_procs(
    port: int,
    request: bytes,
    concurrency: int,
    duration: float,
    max_requests: int,
    window: CpuWindow | None = None,
    processes: int = 2,
) -> LoadResult:
    """The clients spread over ``processes`` processes, each an asyncio loop."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    processes = max(1, min(processes, concurrency))
    shares = [concurrency // processes + (i < concurrency % processes) for i in range(processes)]
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(
            target=_proc_worker,
            daemon=True,
            args=(port, request, share, duration, max_requests // processes + 1, ready, go, out),
        )
        for share in shares
    ]
    result = LoadResult()
    try:
        for p in procs:
            p.start()
        for _ in procs:
            ready.get(timeout=60)
        if window is not None:
            window.start()
        start = time.perf_counter()
        go.set()
        parts = [out.get(timeout=duration + 60) for _ in procs]
        result.elapsed = time.perf_counter() - start
        client_cpu = sum(part[3] for part in parts)
        if window is not None:
            result.cpu = window.stop()
            result.cpu["client_cpu_pct"] = 100 * client_cpu / result.elapsed
        for lat, errors, _, _, sample in parts:
            result.latencies.extend(lat)
            result.errors += errors
            result.error_sample = result.error_sample or sample
    finally:
        for p in procs:
            if p.pid is None:  # never started
                continue
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
    return result


def run_load(
    mode: str,
    port: int,
    request: bytes,
    concurrency: int,
    duration: float,
    max_requests: int,
    window: CpuWindow | None = None,
) -> LoadResult:
    if mode == "asyncio":
        return run_async(load_asyncio(port, request, concurrency, duration, max_requests, window))  # type: ignore[no-any-return]
    if mode == "threads":
        return load_threads(port, request, concurrency, duration, max_requests, window)
    return load_procs(port, request, concurrency, duration, max_requests, window)


def sequential(
    conn: http.client.HTTPConnection,
    path: str,
    n: int,
    warmup: int,
    time_limit: float,
    headers: dict[str, str] | None = None,
) -> tuple[list[float], int]:
    """``n`` timed POSTs of ``{}`` on one reused keep-alive connection, after ``warmup`` untimed ones."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    samples: list[float] = []
    errors = 0
    stop = time.perf_counter() + time_limit
    for i in range(warmup + n):
        if time.perf_counter() > stop:
            break
        t0 = time.perf_counter()
        conn.request("POST", path, body=b"{}", headers=headers)
        response = conn.getresponse()
        response.read()
        elapsed = time.perf_counter() - t0
        if i >= warmup:
            samples.append(elapsed * 1000)
            errors += response.status != 200
    return samples, errors


# ------------------------------------------------------------------------------------------------------------
# processes this benchmark starts
# ------------------------------------------------------------------------------------------------------------


def _stop_process(proc: subprocess.Popen[Any], grace: float) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(10)


class ShoalServer:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.env = {**os.environ, **(env or {})}
        self.argv = [
            sys.executable,
            "-m",
            "shoal",
            "server",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--data-dir",
            str(data_dir),
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_tail: deque[str] = deque(maxlen=200)
        self.warnings: list[list[str]] = []  # the first few warning/error records, with their tracebacks
        self.ready_line = ""
        self._ready = threading.Event()
        self._known: dict[int, int | None] = {}  # descendants seen: pid → start time
        self.startup_ms = 0.0

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        block: list[str] | None = None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.stderr_tail.append(line)
            if re.match(r"\d{4}-\d\d-\d\d ", line):  # a new log record
                block = None
                if (" WARNING " in line or " ERROR " in line or " CRITICAL " in line) and len(
                    self.warnings
                ) < 5:
                    block = [line]
                    self.warnings.append(block)
            elif block is not None and len(block) < 40:  # its traceback
                block.append(line)
            if "Shoal listening on" in line:
                self.ready_line = line
                self._ready.set()

    def start(self, timeout: float = 60) -> None:
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=die_with_parent,
            env=self.env,
        )
        threading.Thread(target=self._read_stderr, daemon=True).start()
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.perf_counter() - t0 > timeout:
                raise RuntimeError("shoal server did not start:\n" + "\n".join(self.stderr_tail))
        self.startup_ms = (time.perf_counter() - t0) * 1000

    def runtimes(self) -> list[str]:
        match = re.search(r"runtimes: ([^;)]*)", self.ready_line)
        return [r.strip() for r in match.group(1).split(",")] if match else []

    def descendants(self) -> list[int]:
        pids = descendants(self.pid)
        for pid in pids:
            self._known.setdefault(pid, _start_time(pid))
        return pids

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(Exception):
            self.descendants()
        _stop_process(self.proc, grace=15)
        # Anything the server started and left behind (same pid *and* start time: never a recycled pid).
        for pid, started in self._known.items():
            if started is not None and _start_time(pid) == started:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # the session we created for it
        self.proc = None


class FloorServer:
    def __init__(self, kind: str, upstream: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--_floor", kind, "--_upstream", str(upstream)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip():
            self.stop()
            raise RuntimeError(f"floor server {kind} did not start")
        self.port = int(line)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        _stop_process(self.proc, grace=3)


# ------------------------------------------------------------------------------------------------------------
# Shoal: functions and invocations
# ------------------------------------------------------------------------------------------------------------


def code_zip(marker: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("app.py", f"# {marker}\n{NO_OP}")  # a distinct package per function: no shared code cache
    return buf.getvalue()


def lambda_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"max_attempts": 0}, read_timeout=60, connect_timeout=10),
    )


def create_function(lam: Any, name: str, runtime: str, memory_mb: int | None = None) -> None:
    extra = {"MemorySize": memory_mb} if memory_mb else {}
    lam.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": code_zip(name)},
        **extra,
    )
    # boto3's waiter, polled every 20 ms instead of its default 1 s so the wait does not dominate.
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.02, "MaxAttempts": 1500}
    )


def choose_runtime(lam: Any, offered: list[str]) -> str:
    pythons = sorted(
        (r for r in offered if re.fullmatch(r"python3\.\d+", r)), key=lambda r: int(r.split(".")[1])
    )
    if not pythons or PREFERRED_RUNTIME in pythons:
        return PREFERRED_RUNTIME
    return pythons[-1]


def create_first(lam: Any, name: str, offered: list[str], memory_mb: int | None = None) -> str:
    """Create ``name`` with python3.12, or the newest python3.X the server names when it refuses that one."""
    from botocore.exceptions import ClientError

    runtime = choose_runtime(lam, offered)
    try:
        create_function(lam, name, runtime, memory_mb)
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 400:
            raise
        named = re.findall(r"python3\.(\d+)", str(exc))
        if not named:
            raise
        runtime = f"python3.{max(int(n) for n in named)}"
        create_function(lam, name, runtime, memory_mb)
    return runtime


def invoke_once(conn: http.client.HTTPConnection, name: str, tail: bool = False) -> tuple[int, float, str]:
    """(status, client wall ms, tail log) of one raw Invoke."""
    headers = {"Content-Type": "application/json"}
    if tail:
        headers["X-Amz-Log-Type"] = "Tail"
    for attempt in (1, 2):
        t0 = time.perf_counter()
        try:
            conn.request("POST", f"/2015-03-31/functions/{name}/invocations", body=b"{}", headers=headers)
            response = conn.getresponse()
            response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            conn.close()  # the server's keep-alive timeout closed an idle connection: once more, connecting
            if attempt == 2:
                raise
            conn.connect()
            continue
        break
    ms = (time.perf_counter() - t0) * 1000
    log = response.getheader("X-Amz-Log-Result")
    return response.status, ms, base64.b64decode(log).decode("utf-8", "replace") if log else ""


# ------------------------------------------------------------------------------------------------------------
# the benchmark
# ------------------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    cold: int
    warm: int
    boto3: int
    duration: float
    warmup_duration: float
    concurrency: list[int]
    memory: list[int]
    client: str
    phase_limit: float


def _fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


class Bench:
    def __init__(self, plan: Plan, args: argparse.Namespace) -> None:
        self.plan = plan
        self.args = args
        self.metrics: dict[str, dict[str, Any]] = {}
        self.throughput: list[dict[str, Any]] = []
        self.floor_throughput: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.out: dict[str, Any] = {}
        self.background_busy = 0.0
        self.server_env: dict[str, str] = {}

    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def run(self, stack: contextlib.ExitStack) -> dict[str, Any]:
        plan = self.plan
        started = time.perf_counter()
        busy0, total0, _ = machine_busy()
        time.sleep(0.5 if self.args.quick else 1.0)
        busy1, total1, _ = machine_busy()
        self.background_busy = 100 * (busy1 - busy0) / max(1.0, total1 - total0)
        if self.background_busy > 10:
            self.notes.append(
                f"the machine was {self.background_busy:.0f}% busy before the benchmark started (other "
                "processes): numbers are noisier and lower than on an idle machine"
            )
        tmp = Path(tempfile.mkdtemp(prefix="shoal-bench-"))
        stack.callback(shutil.rmtree, tmp, True)
        # Environments reserve their MemorySize against a host budget (default 80% of RAM) and Shoal throttles
        # past it. The no-op environments use ~11 MB each, so let the benchmark's own (32 x 1,769 MB ...) fit.
        reserve = plan.cold * plan.memory[0] + sum(max(plan.concurrency) * m for m in plan.memory) + 4096
        server_env = {}
        if "SHOAL_HOST_MEMORY_MB" not in os.environ:
            server_env["SHOAL_HOST_MEMORY_MB"] = str(reserve)
        self.server_env = server_env
        server = ShoalServer(tmp / "data", server_env)
        stack.callback(server.stop)
        self.log(f"starting {' '.join(server.argv)}")
        server.start()
        self.log(server.ready_line.split(": ", 1)[-1])
        rss_idle = vm_rss_kb(server.pid)
        lam = lambda_client(server.endpoint)

        # 4. the physical floor (first, while the server is idle)
        echo = FloorServer("echo")
        stack.callback(echo.stop)
        hop = FloorServer("hop", echo.port)
        stack.callback(hop.stop)
        for label, port in (("floor.echo", echo.port), ("floor.two_hop", hop.port)):
            conn = http.client.HTTPConnection(HOST, port, timeout=30)
            samples, _ = sequential(
                conn, "/2015-03-31/functions/floor/invocations", plan.warm, WARMUP_INVOKES, plan.phase_limit
            )
            conn.close()
            self.metrics[label] = summarize(samples)
        self.log(
            f"floor: echo p50 {self.metrics['floor.echo']['median']:.3f} ms, two-hop p50 "
            f"{self.metrics['floor.two_hop']['median']:.3f} ms"
        )
        hop_request = invoke_request("floor", hop.port)
        for c in plan.concurrency:
            run_load(plan.client, hop.port, hop_request, c, plan.warmup_duration / 2, 10**7)
            r = run_load(
                plan.client,
                hop.port,
                hop_request,
                c,
                plan.duration,
                10**7,
                CpuWindow(hop.proc.pid, [echo.proc.pid]),
            )
            self.floor_throughput.append(self._tput_row(c, r, 0))
        hop.stop()
        echo.stop()

        # 1. cold first invokes (functions of the first memory size)
        fn = {m: f"bench-warm-{m}" for m in plan.memory}
        runtime = create_first(lam, fn[plan.memory[0]], server.runtimes(), plan.memory[0])
        for m in plan.memory[1:]:
            create_function(lam, fn[m], runtime, m)
        conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
        conn.connect()
        self.log(f"runtime {runtime}; {plan.cold} cold starts")
        create_ms, first_ms, init_ms = [], [], []
        errors = 0
        stop_at = time.perf_counter() + plan.phase_limit
        for i in range(plan.cold):
            if time.perf_counter() > stop_at:
                self.notes.append(f"cold phase stopped after {i} functions (time limit)")
                break
            name = f"bench-cold-{i:03d}"
            t0 = time.perf_counter()
            create_function(lam, name, runtime, plan.memory[0])
            create_ms.append((time.perf_counter() - t0) * 1000)
            status, ms, tail = invoke_once(conn, name, tail=True)
            errors += status != 200
            first_ms.append(ms)
            match = _INIT_RE.search(tail)
            if match:
                init_ms.append(float(match.group(1)))
        self.metrics["cold.first_invoke"] = summarize(first_ms) | {"errors": errors}
        self.metrics["cold.init_duration"] = summarize(init_ms)
        self.metrics["cold.create_to_active"] = summarize(create_ms)
        if len(init_ms) < len(first_ms):
            self.notes.append(f"Init Duration missing from {len(first_ms) - len(init_ms)} cold REPORT lines")

        # 2. warm sequential latency, raw keep-alive HTTP, per memory size
        ref = plan.memory[-1]  # the function the Tail, boto3 and profile lines use
        for m in plan.memory:
            path = f"/2015-03-31/functions/{fn[m]}/invocations"
            samples, errors = sequential(conn, path, plan.warm, WARMUP_INVOKES, plan.phase_limit)
            self.metrics[f"warm.sequential.{m}MB"] = summarize(samples) | {"errors": errors}
            self.log(f"warm {m} MB: p50 {self.metrics[f'warm.sequential.{m}MB']['median']:.3f} ms")
        samples, errors = sequential(
            conn,
            f"/2015-03-31/functions/{fn[ref]}/invocations",
            min(plan.warm, 300),
            10,
            plan.phase_limit,
            {"X-Amz-Log-Type": "Tail"},
        )
        self.metrics[f"warm.sequential_tail.{ref}MB"] = summarize(samples) | {"errors": errors}
        conn.close()

        # 3. throughput against one function per concurrency, after a warm-up that creates its environments
        for m in plan.memory:
            request = invoke_request(fn[m], server.port)
            for c in plan.concurrency:
                run_load(plan.client, server.port, request, c, plan.warmup_duration, 10**7)
                envs = server.descendants()
                r = run_load(
                    plan.client, server.port, request, c, plan.duration, 10**7, CpuWindow(server.pid, envs)
                )
                row = self._tput_row(c, r, len(envs), f"{m} MB") | {"memory_mb": m}
                self.throughput.append(row)
                cpu = row["cpu"]
                self.log(
                    f"{m} MB c={c}: {row['invokes_per_s']:,.0f}/s "
                    f"p50 {row['latency_ms'].get('median', 0):.2f} ms (server {cpu['server_cpu_pct']:.0f}% "
                    f"envs {cpu['envs_cpu_pct']:.0f}% client {cpu['client_cpu_pct']:.0f}% "
                    f"machine {cpu['machine_busy_pct']:.0f}%)"
                )

        # optional: profile the server where it gave the most invokes/s
        if self.args.py_spy:
            best = max(self.throughput, key=lambda row: row["invokes_per_s"])
            request = invoke_request(fn[best["memory_mb"]], server.port)
            self.out["profile"] = self._profile(server, request, best["concurrency"], Path(self.args.py_spy))

        # 6. boto3 for reference
        lam.invoke(FunctionName=fn[ref], Payload=b"{}")
        samples = []
        stop_at = time.perf_counter() + plan.phase_limit
        for _ in range(plan.boto3):
            if time.perf_counter() > stop_at:
                break
            t0 = time.perf_counter()
            lam.invoke(FunctionName=fn[ref], Payload=b"{}")["Payload"].read()
            samples.append((time.perf_counter() - t0) * 1000)
        self.metrics[f"warm.boto3.{ref}MB"] = summarize(samples)

        # 5. memory after the runs
        envs = server.descendants()
        env_rss = [vm_rss_kb(p) for p in envs]
        rss = {
            "server_idle_kb": rss_idle,
            "server_kb": vm_rss_kb(server.pid),
            "children": len(envs),
            "children_kb": sum(env_rss),
            "child_median_kb": summarize([float(v) for v in env_rss], "kB").get("median"),
            "total_kb": vm_rss_kb(server.pid) + sum(env_rss),
        }

        self.out.update(
            {
                "benchmark": "shoal-invoke",
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "machine": machine_info() | {"background_busy_pct": self.background_busy},
                "setup": {
                    "server_argv": server.argv,
                    "server_env": self.server_env,
                    "server_banner": server.ready_line,
                    "shoal_module": shoal_module(),
                    "server_startup_ms": server.startup_ms,
                    "runtime": runtime,
                    "sandbox": (re.findall(r"sandbox: ([^;)]*)", server.ready_line) or ["?"])[0],
                    "client": plan.client,
                    "event_loop": loop_name(),
                    "cold_functions": plan.cold,
                    "warm_invokes": plan.warm,
                    "warmup_invokes": WARMUP_INVOKES,
                    "duration_s": plan.duration,
                    "concurrency": plan.concurrency,
                    "memory_mb": plan.memory,
                    "quick": self.args.quick,
                },
                "metrics": self.metrics,
                "throughput": self.throughput,
                "floor_throughput": self.floor_throughput,
                "rss": rss,
                "ratios": self._ratios(),
                "notes": self.notes,
                "server_warnings": server.warnings,
                "total_s": time.perf_counter() - started,
            }
        )
        return self.out

    def _tput_row(self, c: int, r: LoadResult, envs: int, what: str = "the floor") -> dict[str, Any]:
        n = len(r.latencies)
        cpu = r.cpu
        if cpu:
            cpu["other_cpu_pct"] = max(
                0.0,
                cpu["machine_busy_pct"] * cpu["cores"]
                - cpu["server_cpu_pct"]
                - cpu["envs_cpu_pct"]
                - cpu["client_cpu_pct"]
                - cpu["irq_cpu_pct"],
            )
            if n:
                rate = n / r.elapsed
                cpu["server_us_per_invoke"] = 1e4 * cpu["server_cpu_pct"] / rate
                cpu["envs_us_per_invoke"] = 1e4 * cpu["envs_cpu_pct"] / rate
        row = {
            "concurrency": c,
            "invokes": n,
            "errors": r.errors,
            "seconds": r.elapsed,
            "invokes_per_s": n / r.elapsed if r.elapsed else 0.0,
            "latency_ms": summarize([x * 1000 for x in r.latencies]),
            "cpu": r.cpu,
        }
        if envs:
            row["server_children"] = envs
        if r.error_sample:
            row["error_sample"] = r.error_sample
            self.notes.append(
                f"{what}, c={c}: {r.errors} of {n} answers were not 200; the first: "
                + " | ".join(r.error_sample.split("\r\n"))[:600]
            )
        return row

    def _floor_row(self, c: int) -> dict[str, Any] | None:
        return next((f for f in self.floor_throughput if f["concurrency"] == c), None)

    def _ratios(self) -> dict[str, Any]:
        m = self.metrics
        floor = m["floor.two_hop"]
        ratios: dict[str, Any] = {}
        for mem in self.plan.memory:
            warm = m[f"warm.sequential.{mem}MB"]
            ratios[f"warm_{mem}MB_p50_vs_two_hop"] = warm["median"] / floor["median"]
            ratios[f"warm_{mem}MB_p99_vs_two_hop"] = warm["p99"] / floor["p99"]
        for row in self.throughput:
            frow = self._floor_row(row["concurrency"])
            if frow and row["invokes_per_s"]:
                key = f"throughput_{row['memory_mb']}MB_c{row['concurrency']}_floor_over_shoal"
                ratios[key] = frow["invokes_per_s"] / row["invokes_per_s"]
        return ratios

    def _profile(self, server: ShoalServer, request: bytes, c: int, out_dir: Path) -> dict[str, Any]:
        """py-spy the server under ``c`` clients, then the busiest environment (runtime) under one client."""
        exe = shutil.which("py-spy")
        if exe is None:
            self.notes.append("--py-spy: py-spy is not on PATH (pip install py-spy)")
            return {}
        out_dir.mkdir(parents=True, exist_ok=True)
        result: dict[str, Any] = {}
        server_profile = self._spy(exe, server, server.pid, request, c, out_dir / "shoal-server")
        if server_profile:
            result["server"] = server_profile | {"concurrency": c}
        envs = server.descendants()
        before = {pid: cpu_seconds([pid]) for pid in envs}
        run_load(self.plan.client, server.port, request, 1, 0.5, 10**7)
        busiest = max(envs, key=lambda pid: cpu_seconds([pid]) - before[pid], default=None)
        if busiest is not None:
            env_profile = self._spy(exe, server, busiest, request, 1, out_dir / "shoal-environment")
            if env_profile:
                result["environment"] = env_profile | {"concurrency": 1}
        return result

    def _spy(
        self, exe: str, server: ShoalServer, pid: int, request: bytes, c: int, stem: Path
    ) -> dict[str, Any]:
        duration = max(2, int(self.plan.duration))
        self.log(f"py-spy on pid {pid} for {duration} s at c={c} → {stem}.txt / .svg")
        result: dict[str, Any] = {"pid": pid}
        for fmt, target in (("raw", stem.with_suffix(".txt")), ("flamegraph", stem.with_suffix(".svg"))):
            argv = [exe, "record", "--pid", str(pid), "--duration", str(duration), "--rate", "250"]
            argv += ["--nonblocking", "--format", fmt, "--output", str(target)]
            spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(0.5)
            r = run_load(self.plan.client, server.port, request, c, duration + 1, 10**7)
            try:
                _, err = spy.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
                _, err = spy.communicate()
            if spy.returncode != 0 or not target.exists():
                self.notes.append(f"py-spy failed on pid {pid}: {err.decode(errors='replace')[-300:]}")
                return {}
            result.setdefault("invokes_per_s_while_profiling", len(r.latencies) / r.elapsed)
            result.setdefault("files", []).append(str(target))
        result.update(summarize_profile(stem.with_suffix(".txt")))
        return result

    # ---- output ---------------------------------------------------------------------------------------

    def table(self) -> str:
        m, out = self.metrics, self.out
        floor = m["floor.two_hop"]
        lines = []
        mi = out["machine"]
        lines.append(
            f"Shoal invoke benchmark — {mi['cpu_model']}, {mi['cores_usable']} cores, kernel {mi['kernel']}, "
            f"Python {mi['python']}, commit {mi['git_commit'] or '?'}"
        )
        lines.append(f"command: {out['command']}  (shoal from {out['setup']['shoal_module']})")
        if self.server_env:
            lines.append("server environment: " + " ".join(f"{k}={v}" for k, v in self.server_env.items()))
        s = out["setup"]
        lines.append(
            f"runtime {s['runtime']}; sandbox {s['sandbox']}; client {s['client']} ({s['event_loop']}); "
            f"machine {mi['background_busy_pct']:.0f}% busy before start; "
            f"server start-up {s['server_startup_ms']:.0f} ms"
        )
        lines.append("")
        head = f"{'latency (ms)':<40}{'n':>6}{'median':>10}{'p99':>10}{'min':>10}{'max':>10}{'x floor':>9}"
        lines.append(head)
        lines.append("-" * len(head))
        ref = self.plan.memory[-1]
        rows = [
            ("cold: create + wait Active (boto3)", "cold.create_to_active", None),
            ("cold: first invoke (client wall)", "cold.first_invoke", None),
            ("cold: Init Duration (REPORT)", "cold.init_duration", None),
        ]
        rows += [
            (f"warm {mem} MB: sequential, raw", f"warm.sequential.{mem}MB", floor) for mem in self.plan.memory
        ]
        rows += [
            (f"warm {ref} MB: sequential, LogType Tail", f"warm.sequential_tail.{ref}MB", floor),
            (f"warm {ref} MB: boto3 (reference)", f"warm.boto3.{ref}MB", floor),
            ("floor: HTTP echo, 1 hop", "floor.echo", None),
            ("floor: HTTP echo, 2 hops", "floor.two_hop", None),
        ]
        for label, key, ref in rows:
            v = m.get(key, {})
            if not v.get("n"):
                continue
            ratio = f"{v['median'] / ref['median']:.1f}x" if ref else ""
            lines.append(
                f"{label:<40}{v['n']:>6}{_fmt(v['median'], 3):>10}{_fmt(v['p99'], 3):>10}"
                f"{_fmt(v['min'], 3):>10}{_fmt(v['max'], 3):>10}{ratio:>9}"
            )
        lines.append("")
        head = (
            f"{'throughput':<16}{'invokes/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'floor/s':>10}"
            f"{'floor÷':>8}{'server%':>9}{'envs%':>7}{'client%':>9}{'irq%':>6}{'other%':>8}{'machine%':>10}"
            f"{'server µs':>11}{'env µs':>8}"
        )
        lines.append(head)
        lines.append("-" * len(head))
        for row in self.throughput:
            lat, cpu = row["latency_ms"], row["cpu"]
            frow = self._floor_row(row["concurrency"]) or {"invokes_per_s": 0.0}
            ratio = frow["invokes_per_s"] / row["invokes_per_s"] if row["invokes_per_s"] else 0
            label = f"{row['memory_mb']} MB c={row['concurrency']}"
            lines.append(
                f"{label:<16}{row['invokes_per_s']:>11,.0f}"
                f"{_fmt(lat.get('median'), 2):>9}{_fmt(lat.get('p99'), 2):>9}{row['errors']:>8}"
                f"{frow['invokes_per_s']:>10,.0f}{ratio:>7.1f}x{cpu['server_cpu_pct']:>9.0f}"
                f"{cpu['envs_cpu_pct']:>7.0f}{cpu['client_cpu_pct']:>9.0f}{cpu['irq_cpu_pct']:>6.0f}"
                f"{cpu['other_cpu_pct']:>8.0f}"
                f"{cpu['machine_busy_pct']:>10.0f}{cpu.get('server_us_per_invoke', 0):>11.0f}"
                f"{cpu.get('envs_us_per_invoke', 0):>8.0f}"
            )
        lines.append(
            "(server%/envs%/client%/irq%/other% are % of one core: irq = interrupt + softirq (loopback TCP), "
            "other = everything else,\n i.e. other processes; machine% is of all cores; server/env µs = CPU "
            "per invoke; floor = 2-hop echo at the same concurrency)"
        )
        rss = out["rss"]
        lines.append("")
        mb = {k: (v or 0) / 1024 for k, v in rss.items()}
        lines.append(
            f"RSS: server {mb['server_kb']:.1f} MB (idle at start {mb['server_idle_kb']:.1f} MB); "
            f"{rss['children']} child processes {mb['children_kb']:.1f} MB "
            f"(median {mb['child_median_kb']:.1f} MB each); total {mb['total_kb']:.1f} MB"
        )
        for what, profile in (out.get("profile") or {}).items():
            lines.append("")
            lines.append(
                f"py-spy {what} (pid {profile['pid']}, c={profile['concurrency']}, {profile['samples']} "
                f"samples, {profile['invokes_per_s_while_profiling']:,.0f} invokes/s while profiling):"
            )
            lines.append("  top self time (a C call such as a socket write is charged to its Python caller):")
            for pct, frame in profile["self"][:12]:
                lines.append(f"    {pct:5.1f}%  {frame}")
            lines.append("  top inclusive:")
            for pct, frame in profile["inclusive"][:25]:
                lines.append(f"    {pct:5.1f}%  {frame}")
        for note in self.notes:
            lines.append(f"note: {note}")
        for block in out.get("server_warnings", []):
            lines.append(f"server: {block[0]}")
            lines.extend(f"server:   {line}" for line in block[1:])
        lines.append(f"total {out['total_s']:.1f} s")
        return "\n".join(lines)


def summarize_profile(raw: Path) -> dict[str, Any]:
    """Self and inclusive sample shares per frame from py-spy's raw (collapsed-stack) output."""
    self_counts: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    frame_re = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")

    def short(frame: str) -> str:
        m = frame_re.match(frame.strip())
        if not m:
            return frame.strip()
        fn, path = m.groups()
        for marker in ("site-packages/", "/src/", "/lib/python3"):
            if marker in path:
                path = path.split(marker, 1)[1]
                break
        return f"{fn} ({path})"

    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [
            short(f)
            for f in stack.split(";")
            if f and not f.startswith("process ") and not f.startswith("thread ")
        ]
        if not frames:
            continue
        total += n
        self_counts[frames[-1]] = self_counts.get(frames[-1], 0) + n
        for f in set(frames):
            incl[f] = incl.get(f, 0) + n

    def top(d: dict[str, int], k: int) -> list[tuple[float, str]]:
        return (
            [(100 * v / total, f) for f, v in sorted(d.items(), key=lambda kv: -kv[1])[:k]] if total else []
        )

    return {"samples": total, "self": top(self_counts, 25), "inclusive": top(incl, 40)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer samples and shorter runs (under ~40 s)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    parser.add_argument(
        "--client",
        choices=("asyncio", "procs", "threads"),
        default="asyncio",
        help="load generator for the throughput runs: one asyncio process (default), two asyncio "
        "processes, or one thread per client",
    )
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated client counts [1,8,32]")
    parser.add_argument(
        "--memory",
        default="128,1769",
        help="comma-separated MemorySize of the warm functions [128,1769]: 128 is Lambda's default (0.1 vCPU "
        "quota in the namespace sandbox), 1,769 MB is one full vCPU; cold starts use the first",
    )
    parser.add_argument("--duration", type=float, help="seconds per throughput run [5; --quick 2]")
    parser.add_argument("--cold", type=int, help="new functions for cold starts [30; --quick 10]")
    parser.add_argument("--warm", type=int, help="timed sequential warm invokes [1000; --quick 300]")
    parser.add_argument(
        "--py-spy",
        metavar="DIR",
        help="also profile the server with py-spy under the highest concurrency; raw stacks and "
        "a flame graph go to DIR",
    )
    parser.add_argument("--_floor", choices=("echo", "hop"), help=argparse.SUPPRESS)
    parser.add_argument("--_upstream", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._floor:
        with contextlib.suppress(KeyboardInterrupt):
            run_async(_serve_floor(args._floor, args._upstream))
        return 0

    quick = args.quick
    plan = Plan(
        cold=args.cold if args.cold is not None else (10 if quick else 30),
        warm=args.warm if args.warm is not None else (300 if quick else 1000),
        boto3=300,
        duration=args.duration if args.duration is not None else (1.5 if quick else 5.0),
        warmup_duration=0.5 if quick else 1.0,
        concurrency=[int(c) for c in args.concurrency.split(",") if c.strip()],
        memory=[int(m) for m in args.memory.split(",") if m.strip()],
        client=args.client,
        phase_limit=20.0 if quick else 45.0,
    )

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    bench = Bench(plan, args)
    try:
        with contextlib.ExitStack() as stack:
            out = bench.run(stack)
    except KeyboardInterrupt:
        print("interrupted; server stopped and temporary files removed", file=sys.stderr)
        return 130
    print(bench.table())
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Shoal scaling benchmark: cold starts per runtime, bursts, many functions, memory per environment.

    python bench/scaling.py [--quick] [--json bench/results/scaling.json] [--py-spy DIR]

Starts its own ``shoal server`` on a free loopback port with a temporary data dir (``--account-concurrency
2000``), measures, prints a table and (with ``--json``) writes the numbers with the machine they were
taken on:

1. cold start per runtime (Python, Node.js, Java, Ruby, a custom ``provided.al2023`` shell bootstrap), new
   functions invoked back-to-back and paced 0.2 s apart: client wall time and the REPORT's ``Init Duration``;
2. bursts of N concurrent first invocations of a fresh function: time until all complete, environments used,
   environments per second, non-200 answers by status;
3. sustained throughput over 20 functions with 16 clients;
4. memory (USS, PSS) per idle Python environment, and the server's RSS;
5. environments started per second when 50 new functions are first-invoked one after another.

Everything is on 127.0.0.1; every loop is bounded in count and time. The server and everything it started are
stopped (SIGTERM, then SIGKILL) and the temporary directory removed on every exit path, Ctrl-C included, and
the script checks that no process of the server is left. See ``bench/README.md`` (Scaling) for the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import concurrent.futures
import contextlib
import http.client
import io
import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import HOST, die_with_parent, free_port, machine_info, stat_fields, summarize

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/bench"
ACCOUNT_CONCURRENCY = 2000
PACE_S = 0.2
PHASES = ("cold", "memory", "sequential", "sustained", "burst", "snapstart")
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_INIT_RE = re.compile(r"Init Duration: ([0-9.]+) ms")

PY_NOOP = "def handler(e, c):\n    return None\n"
PY_SLEEP = "import time\n\n\ndef handler(e, c):\n    time.sleep(0.1)\n    return c.log_stream_name\n"
# SnapStart functions have no log stream name: an environment is known by its own uid. {"end": true} ends the
# environment (the next invocation then needs a new one)
PY_SLEEP_UID = (
    "import os, time\n\n\ndef handler(e, c):\n    if e.get('end'):\n        os._exit(0)\n"
    "    time.sleep(e.get('sleep', 0.1))\n    return os.getuid()\n"
)
_RESTORE_RE = re.compile(r"\tRestore Duration: ([\d.]+) ms")
NODE_NOOP = "exports.handler = async () => null;\n"
RUBY_NOOP = "def handler(event:, context:)\n  nil\nend\n"
JAVA_NOOP = (
    "public class Hello {\n"
    '    public static String handleRequest(java.util.Map<String, Object> in) { return "ok"; }\n'
    "}\n"
)
# A custom runtime in POSIX shell: one curl per Runtime API call (no keep-alive), as the docs allow.
SHELL_BOOTSTRAP = r"""#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation"
while :; do
  curl -sS -D /tmp/head -o /tmp/event "$API/next" || exit 1
  ID=$(tr -d '\r' < /tmp/head | awk -F': *' 'tolower($1) == "lambda-runtime-aws-request-id" { print $2 }')
  curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' -d 'null' "$API/$ID/response" || exit 1
done
"""


# ------------------------------------------------------------------------------------------------------------
# /proc
# ------------------------------------------------------------------------------------------------------------


def all_parents() -> dict[int, int]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = stat_fields(int(entry))
            if fields is not None:
                out[int(entry)] = int(fields[1])
    return out


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in all_parents().items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def start_time(pid: int) -> int | None:
    fields = stat_fields(pid)
    return int(fields[19]) if fields and fields[0] != "Z" else None


def _on_cpu_ns(pid: int) -> int:
    """Time on CPU of all the process's threads, in ns (``schedstat``: utime and stime are whole clock ticks
    per process, and a process that ran for less than a tick reads as 0 there)."""
    total = 0
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def cpu_seconds(pids: Iterable[int], children: bool = False) -> float:
    """Time on CPU of the processes (and, with ``children``, utime + stime of their children that they
    waited for)."""
    ns, ticks = 0, 0
    for pid in pids:
        ns += _on_cpu_ns(pid)
        if children:
            fields = stat_fields(pid)
            if fields is not None:
                ticks += int(fields[13]) + int(fields[14])  # cutime + cstime
    return ns / 1e9 + ticks / _CLK_TCK


def vm_rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_uid(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    return None


def smaps_rollup(pid: int) -> dict[str, int]:
    """kB fields of /proc/PID/smaps_rollup (Rss, Pss, Private_Clean, Private_Dirty …)."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                out[parts[0][:-1]] = int(parts[1])
    return out


def cgroup_paths(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return [line.split(":", 2)[2] for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines()]
    return []


def environ_has(pid: int, key: bytes) -> bool:
    with contextlib.suppress(OSError):
        return any(v.startswith(key + b"=") for v in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
    return False


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values[:8]) - idle, sum(values[:8])


@dataclass
class Window:
    """CPU of the server, of its descendants and of the whole machine over a phase."""

    server: ShoalServer
    t0: float = 0.0
    s0: float = 0.0
    d0: float = 0.0
    c0: float = 0.0
    m0: tuple[int, int] = (0, 0)

    @staticmethod
    def _client() -> float:
        t = os.times()
        return t.user + t.system

    def _others(self) -> float:
        """Everything the server started: live descendants and the ones already waited for (by the server,
        a subreaper, or by a launcher daemon)."""
        pid = self.server.pid
        return cpu_seconds(self.server.descendants(), children=True) + (
            cpu_seconds([pid], children=True) - cpu_seconds([pid])
        )

    def start(self) -> Window:
        self.d0 = self._others()
        self.s0 = cpu_seconds([self.server.pid])
        self.c0 = self._client()
        self.m0 = machine_busy()
        self.t0 = time.perf_counter()
        return self

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        busy, total = machine_busy()
        s = cpu_seconds([self.server.pid]) - self.s0
        d = self._others() - self.d0  # (a descendant that ended unwaited-for is missed)
        c = self._client() - self.c0
        machine = (busy - self.m0[0]) / max(1, total - self.m0[1])
        cores = len(os.sched_getaffinity(0))
        return {
            "wall_s": wall,
            "server_cpu_pct": 100 * s / wall,  # % of one core
            "descendants_cpu_pct": 100 * d / wall,  # environments, launchers, stem cells
            "client_cpu_pct": 100 * c / wall,  # this benchmark
            "machine_busy_pct": 100 * machine,  # % of all cores
            # other processes on the host, and kernel work charged to nobody: % of one core
            "other_cpu_pct": 100 * (machine * cores - (s + d + c) / wall),
        }


# ------------------------------------------------------------------------------------------------------------
# the server under test
# ------------------------------------------------------------------------------------------------------------


class ShoalServer:
    def __init__(self, data_dir: Path, extra: list[str]) -> None:
        self.port = free_port()
        self.data_dir = data_dir
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
            *extra,
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=200)
        self.problems: list[list[str]] = []  # the first warning/error records, with tracebacks
        self.problem_count = 0
        self.ready_line = ""
        self._ready = threading.Event()
        self.known: dict[int, int | None] = {}  # every descendant seen: pid → start time
        self.cgroups: set[str] = set()  # cgroup directories its environments were seen in
        self.cgroups_left: list[str] = []  # … that still existed after it stopped
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
                if " WARNING " in line or " ERROR " in line or " CRITICAL " in line:
                    self.problem_count += 1
                    if len(self.problems) < 5:
                        block = [line]
                        self.problems.append(block)
            elif block is not None and len(block) < 40:  # its traceback
                block.append(line)
            if "Shoal listening on" in line:
                self.ready_line = line
                self._ready.set()

    def start(self, timeout: float = 90) -> None:
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        threading.Thread(target=self._read_stderr, daemon=True).start()
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.perf_counter() - t0 > timeout:
                raise RuntimeError("shoal server did not start:\n" + "\n".join(self.stderr_tail))
        self.startup_ms = (time.perf_counter() - t0) * 1000

    def runtimes(self) -> list[str]:
        match = re.search(r"runtimes: ([^;)]*)", self.ready_line)
        return [r.strip() for r in match.group(1).split(",")] if match else []

    def sandbox(self) -> str:
        match = re.search(r"sandbox: ([^;]*)", self.ready_line)
        return match.group(1).strip() if match else "?"

    def descendants(self) -> list[int]:
        pids = descendants(self.pid)
        for pid in pids:
            if pid not in self.known:
                self.known[pid] = start_time(pid)
                for path in cgroup_paths(pid):
                    if "/shoal/" in path:
                        self.cgroups.add(path)
        return pids

    def environments(self) -> dict[str, list[int]]:
        """Live execution environments: cgroup slot → its processes.

        An environment's processes are in a cgroup under ``shoal/`` and run as an unprivileged uid (stem cells
        waiting to be specialised and the fork-servers run as root). Without cgroups (process sandbox), one
        process that carries ``AWS_LAMBDA_FUNCTION_NAME`` in its environment is one environment."""
        envs: dict[str, list[int]] = {}
        for pid in self.descendants():
            slot = next((p for p in cgroup_paths(pid) if "/shoal/" in p), None)
            if slot is not None:
                if proc_uid(pid) != 0:
                    envs.setdefault(slot, []).append(pid)
            elif os.getuid() != 0 and environ_has(pid, b"AWS_LAMBDA_FUNCTION_NAME"):
                envs.setdefault(f"pid {pid}", []).append(pid)
        return envs

    def stop(self) -> list[str]:
        """SIGTERM, grace, SIGKILL; then anything it left behind. Returns what had to be killed."""
        if self.proc is None:
            return []
        with contextlib.suppress(Exception):
            self.descendants()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(10)
        time.sleep(0.2)
        leftovers = []
        # Anything the server started and left behind: same pid *and* start time (never a recycled pid) …
        for pid, started in self.known.items():
            if started is not None and start_time(pid) == started:
                leftovers.append(f"{pid} {_cmdline(pid)}")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        # … or still in one of its environments' cgroups (a daemon that escaped the process tree).
        for path in self.cgroups:
            for root in Path("/sys/fs/cgroup").iterdir():
                procs = root / path.lstrip("/") / "cgroup.procs"
                with contextlib.suppress(OSError, ValueError):
                    for pid in map(int, procs.read_text().split()):
                        leftovers.append(f"{pid} {_cmdline(pid)} (in {procs.parent})")
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # the session we created for it
        self.proc = None
        # The server removes its cgroup instance directory on a clean stop: note any that stayed.
        instances = {str(Path(p).parent) for p in self.cgroups}
        self.cgroups_left = sorted(
            str(root / inst.lstrip("/"))
            for inst in instances
            for root in Path("/sys/fs/cgroup").iterdir()
            if (root / inst.lstrip("/")).is_dir()
        )
        return sorted(set(leftovers))


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
    return "?"


class Profiler:
    """py-spy record of the server during a phase (raw collapsed stacks), summarised afterwards."""

    RATE = 200

    def __init__(self, directory: Path | None, pid: int) -> None:
        self.directory = directory
        self.pid = pid
        self.proc: subprocess.Popen[bytes] | None = None
        self.path: Path | None = None
        self.t0 = 0.0
        self.results: dict[str, Any] = {}

    @contextlib.contextmanager
    def record(self, name: str) -> Any:
        if self.directory is None or shutil.which("py-spy") is None:
            yield
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"{name}.txt"
        self.proc = subprocess.Popen(
            [
                "py-spy",
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(self.RATE),
                "--format",
                "raw",
                "--nonblocking",
                "--duration",
                "300",
                "-o",
                str(self.path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        time.sleep(0.5)  # attached
        self.t0 = time.perf_counter()
        try:
            yield
        finally:
            wall = time.perf_counter() - self.t0
            self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.results[name] = summarize_stacks(self.path, wall * self.RATE)


def summarize_stacks(path: Path, possible: float) -> dict[str, Any]:
    """Top self and inclusive frames of a py-spy raw (collapsed) profile."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            frames = [re.sub(r" \(.*?/(site-packages|src)/", " (", f) for f in stack.split(";")]
            total += n
            own[frames[-1]] += n
            for f in set(frames[1:]):  # the thread's name comes first
                incl[f] += n
    return {
        "file": str(path),
        "samples": total,
        "busy_pct_of_one_thread": 100 * total / max(1.0, possible),
        "top_self": [(f, round(100 * n / max(1, total), 1)) for f, n in own.most_common(12)],
        "top_inclusive": [(f, round(100 * n / max(1, total), 1)) for f, n in incl.most_common(25)],
    }


# ------------------------------------------------------------------------------------------------------------
# functions
# ------------------------------------------------------------------------------------------------------------


def lambda_client(endpoint: str, service: str = "lambda") -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(
            retries={"max_attempts": 0}, read_timeout=60, connect_timeout=10, max_pool_connections=8
        ),
    )


def zip_of(files: dict[str, bytes | str], executable: Iterable[str] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if name in executable else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()


@dataclass
class Kind:
    """How to make a no-op function of one runtime."""

    runtime: str
    handler: str
    make: Callable[[str], bytes]  # marker → zip (a distinct package per function: no shared code cache)


def python_kind(runtime: str, source: str = PY_NOOP) -> Kind:
    return Kind(runtime, "app.handler", lambda m: zip_of({"app.py": f"# {m}\n{source}"}))


def choose_kinds(offered: list[str], tmp: Path, notes: list[str]) -> list[Kind]:
    kinds: list[Kind] = []

    def newest(prefix: str, pattern: str) -> str | None:
        found = [r for r in offered if re.fullmatch(pattern, r)]
        nums = [tuple(int(x) for x in re.findall(r"\d+", r)) for r in found]
        return max(zip(nums, found, strict=True))[1] if found else None

    py = "python3.12" if "python3.12" in offered else newest("python", r"python3\.\d+")
    if py:
        kinds.append(python_kind(py))
    else:
        notes.append("no python3.X runtime offered")
    node = "nodejs20.x" if "nodejs20.x" in offered else newest("nodejs", r"nodejs\d+\.x")
    if node:
        kinds.append(Kind(node, "index.handler", lambda m: zip_of({"index.js": f"// {m}\n{NODE_NOOP}"})))
    else:
        notes.append("skipped Node.js: the server offers no nodejs runtime (no node on the host)")
    java = next((r for r in ("java21", "java17") if r in offered), None) or newest("java", r"java\d+")
    javac = shutil.which("javac")
    if java and javac:
        major = int(java[4:])
        src = tmp / "java"
        src.mkdir(exist_ok=True)
        (src / "Hello.java").write_text(JAVA_NOOP)
        release = ["--release", str(major)]
        done = subprocess.run(
            [javac, *release, "-d", str(src), str(src / "Hello.java")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:  # an older javac than the runtime: compile for what it knows
            done = subprocess.run(
                [javac, "-d", str(src), str(src / "Hello.java")],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        if done.returncode == 0:
            cls = (src / "Hello.class").read_bytes()
            kinds.append(
                Kind(java, "Hello::handleRequest", lambda m: zip_of({"Hello.class": cls, "marker.txt": m}))
            )
        else:
            notes.append(f"skipped Java: javac failed: {done.stderr.strip()[:300]}")
    else:
        notes.append(f"skipped Java: runtime offered: {java or 'none'}, javac: {javac or 'missing'}")
    ruby = "ruby3.3" if "ruby3.3" in offered else newest("ruby", r"ruby\d+\.\d+")
    if ruby:
        kinds.append(Kind(ruby, "function.handler", lambda m: zip_of({"function.rb": f"# {m}\n{RUBY_NOOP}"})))
    else:
        notes.append("skipped Ruby: the server offers no ruby runtime (no ruby on the host)")
    custom = "provided.al2023" if "provided.al2023" in offered else None
    if custom and shutil.which("curl"):
        kinds.append(
            Kind(
                custom,
                "bootstrap",
                lambda m: zip_of(
                    {"bootstrap": SHELL_BOOTSTRAP.replace("\n", f"\n# {m}\n", 1)}, executable=["bootstrap"]
                ),
            )
        )
    else:
        notes.append("skipped provided.al2023: " + ("no curl on the host" if custom else "not offered"))
    return kinds


def create_functions(lam: Any, specs: list[tuple[str, Kind]], memory_mb: int = 128, **extra: Any) -> None:
    """Create the functions (4 at a time, with ``extra`` CreateFunction members) and wait until every one is
    Active."""

    def create(spec: tuple[str, Kind]) -> None:
        name, kind = spec
        lam.create_function(
            FunctionName=name,
            Runtime=kind.runtime,
            Role=ROLE,
            Handler=kind.handler,
            Code={"ZipFile": kind.make(name)},
            MemorySize=memory_mb,
            Timeout=30,
            **extra,
        )

    def wait(spec: tuple[str, Kind]) -> None:
        lam.get_waiter("function_active_v2").wait(
            FunctionName=spec[0], WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(create, specs))
        list(pool.map(wait, specs))


def restore_durations(endpoint: str, name: str, expected: int) -> list[float]:
    """The ``Restore Duration`` of every RESTORE_REPORT in the function's log group (its copies' restores),
    once ``expected`` of them are there (or 15 s have passed)."""
    logs = lambda_client(endpoint, "logs")
    found: list[float] = []
    deadline = time.monotonic() + 15  # log lines reach the store within its flush interval
    pages = logs.get_paginator("filter_log_events")
    while time.monotonic() < deadline:
        found = [
            float(event["message"].split()[3])
            for page in pages.paginate(logGroupName=f"/aws/lambda/{name}")
            for event in page["events"]
            if event["message"].startswith("RESTORE_REPORT Restore Duration: ")
        ]
        if len(found) >= expected:
            break
        time.sleep(0.5)
    return found


def delete_functions(lam: Any, names: Iterable[str]) -> None:
    def delete(name: str) -> None:
        with contextlib.suppress(Exception):
            lam.delete_function(FunctionName=name)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(delete, names))


def invoke_once(
    conn: http.client.HTTPConnection,
    name: str,
    payload: bytes = b"{}",
    pattern: re.Pattern[str] | None = None,
) -> tuple[int, float, float | None, bytes]:
    """(status, client wall ms, Init Duration ms — or what ``pattern`` finds in the tail — or None, body) of
    one raw Invoke with the log tail."""
    headers = {"Content-Type": "application/json", "X-Amz-Log-Type": "Tail"}
    for attempt in (1, 2):
        t0 = time.perf_counter()
        try:
            conn.request("POST", f"/2015-03-31/functions/{name}/invocations", body=payload, headers=headers)
            response = conn.getresponse()
            body = response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            conn.close()  # the server closed an idle keep-alive connection: once more, connecting anew
            if attempt == 2:
                raise
            conn.connect()
            continue
        break
    ms = (time.perf_counter() - t0) * 1000
    tail = response.getheader("X-Amz-Log-Result")
    text = base64.b64decode(tail).decode("utf-8", "replace") if tail else ""
    match = (pattern or _INIT_RE).search(text)
    return response.status, ms, float(match.group(1)) if match else None, body


def invoke_request(name: str, port: int) -> bytes:
    return (
        f"POST /2015-03-31/functions/{name}/invocations HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    ).encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response (Content-Length or chunked): (status, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    headers = head.decode("latin-1").lower()
    match = re.search(r"\r\ncontent-length:\s*(\d+)", headers)
    if match:
        return status, await reader.readexactly(int(match.group(1)))
    if "transfer-encoding: chunked" in headers:
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            body += await reader.readexactly(size + 2)
            if size == 0:
                return status, bytes(body[:-2])
            del body[-2:]
    return status, b""


# ------------------------------------------------------------------------------------------------------------
# phases
# ------------------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    cold: int
    bursts: list[int]
    sustained_functions: int
    sustained_clients: int
    duration: float
    warmup: float
    memory_envs: int
    sequential: int
    phase_limit: float
    burst_timeout: float


@contextlib.contextmanager
def perf_record(path: str) -> Iterator[None]:
    """``perf record`` of every CPU (call graphs, ~1 kHz) while the block runs."""
    if shutil.which("perf") is None:
        raise SystemExit("--perf needs perf (apt-get install linux-perf)")
    proc = subprocess.Popen(
        ["perf", "record", "-a", "-g", "-F", "999", "-o", path],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    time.sleep(0.5)  # recording
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # perf writes its data on SIGINT
        proc.wait(30)


class Bench:
    def __init__(self, plan: Plan, args: argparse.Namespace) -> None:
        self.plan = plan
        self.args = args
        self.notes: list[str] = []
        self.metrics: dict[str, dict[str, Any]] = {}
        self.cold: list[dict[str, Any]] = []
        self.bursts: list[dict[str, Any]] = []
        self.snap_bursts: list[dict[str, Any]] = []
        self.snap_sequential: dict[str, Any] = {}
        self.sustained: dict[str, Any] = {}
        self.memory: dict[str, Any] = {}
        self.sequential: dict[str, Any] = {}
        self.out: dict[str, Any] = {}
        self.server: ShoalServer | None = None
        self.profiler: Profiler | None = None

    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    # ---- 1. cold start per runtime -------------------------------------------------------------------------

    def phase_cold(self, lam: Any, kinds: list[Kind]) -> None:
        assert self.server is not None
        n = self.plan.cold
        specs: dict[str, list[tuple[str, Kind]]] = {}
        for k in kinds:
            tag = re.sub(r"[^a-z0-9]", "", k.runtime)
            specs[k.runtime] = [
                (f"cold-{tag}-{mode}-{i}", k)
                for mode in ("first", "b2b", "paced")
                for i in range(1 if mode == "first" else n)
            ]
        t0 = time.perf_counter()
        create_functions(lam, [s for v in specs.values() for s in v])
        self.log(
            f"cold: created {sum(len(v) for v in specs.values())} functions in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        conn = http.client.HTTPConnection(HOST, self.server.port, timeout=60)
        for k in kinds:
            row: dict[str, Any] = {"runtime": k.runtime, "handler": k.handler}
            errors: collections.Counter[int] = collections.Counter()
            stop_at = time.perf_counter() + self.plan.phase_limit
            for mode in ("first", "b2b", "paced"):
                names = [s[0] for s in specs[k.runtime] if f"-{mode}-" in s[0]]
                wall, init = [], []
                time.sleep(1.0)  # every mode starts with the runtime's stem cells made (and the CPU quiet)
                for name in names:
                    if time.perf_counter() > stop_at:
                        self.notes.append(f"cold {k.runtime} {mode}: stopped at the phase's time limit")
                        break
                    if mode == "paced":
                        time.sleep(PACE_S)
                    status, ms, init_ms, body = invoke_once(conn, name)
                    if status != 200:
                        errors[status] += 1
                        if len(self.notes) < 30:
                            self.notes.append(f"cold {k.runtime}: {status} {body[:300]!r}")
                        continue
                    wall.append(ms)
                    if init_ms is not None:
                        init.append(init_ms)
                row[mode] = {"first_invoke_ms": summarize(wall), "init_duration_ms": summarize(init)}
                self.metrics[f"cold.{k.runtime}.{mode}.first_invoke"] = summarize(wall)
                self.metrics[f"cold.{k.runtime}.{mode}.init_duration"] = summarize(init)
            row["errors"] = dict(errors)
            row["warm"] = self._warm_floor(conn, [s[0] for s in specs[k.runtime] if "-paced-" in s[0]])
            self.cold.append(row)
            b2b, paced = row["b2b"], row["paced"]
            self.log(
                f"cold {k.runtime}: first-ever {row['first']['first_invoke_ms'].get('median', 0):.0f} ms; "
                f"back-to-back p50 {b2b['first_invoke_ms'].get('median', 0):.1f} ms "
                f"(init {b2b['init_duration_ms'].get('median', 0):.1f}); paced p50 "
                f"{paced['first_invoke_ms'].get('median', 0):.1f} ms "
                f"(init {paced['init_duration_ms'].get('median', 0):.1f}); errors {dict(errors)}"
            )
        conn.close()
        delete_functions(lam, [s[0] for v in specs.values() for s in v])

    def _warm_floor(self, conn: http.client.HTTPConnection, names: list[str]) -> dict[str, Any]:
        """Warm invokes of the functions just started, back to back and paced like the cold starts: what any
        request costs here, without a start. On a virtual machine whose idle CPUs halt, every process that
        must be woken costs more after a pause; paced cold starts are read against the paced floor."""
        out: dict[str, Any] = {}
        names = names[: self.plan.cold]
        if not names:
            return out
        for mode in ("b2b", "paced"):
            wall = []
            for name in names:
                if mode == "paced":
                    time.sleep(PACE_S)
                status, ms, _, _ = invoke_once(conn, name)
                if status == 200:
                    wall.append(ms)
            out[mode] = summarize(wall)
        return out

    # ---- 2. bursts -----------------------------------------------------------------------------------------

    def phase_burst(self, lam: Any, kind: Kind) -> None:
        for n in self.plan.bursts:
            name = f"burst-{n}"
            create_functions(lam, [(name, python_kind(kind.runtime, PY_SLEEP))])
            self._measure_burst(name, n, self.bursts, "burst")
            delete_functions(lam, [name])
            time.sleep(1.0)

    def phase_snapstart(self, lam: Any, kind: Kind) -> None:
        """Bursts on a published SnapStart version whose snapshot is made: every new environment is forked."""
        if not re.fullmatch(r"python3\.(1[2-9]|[2-9]\d)", kind.runtime):
            self.notes.append(f"snapstart: skipped, {kind.runtime} is not python3.12 or later")
            return
        assert self.server is not None
        for n in self.plan.bursts:
            name = f"snap-{n}"
            create_functions(
                lam,
                [(name, python_kind(kind.runtime, PY_SLEEP_UID))],
                SnapStart={"ApplyOn": "PublishedVersions"},
            )
            target = f"{name}:{lam.publish_version(FunctionName=name)['Version']}"
            conn = http.client.HTTPConnection(HOST, self.server.port, timeout=60)
            status, ms, _, body = invoke_once(conn, target)  # makes the snapshot (its INIT) and one copy
            conn.close()
            if status != 200:
                self.notes.append(f"snapstart: the first invoke answered {status}: {body[:300]!r}")
                delete_functions(lam, [name])
                return
            self.log(f"snapstart: snapshot and first copy in {ms:.0f} ms")
            if n == self.plan.bursts[0]:
                self._sequential_restores(target)
            self._measure_burst(target, n, self.snap_bursts, "snapstart")
            restores = restore_durations(self.server.endpoint, name, self.snap_bursts[-1]["environments"])
            self.snap_bursts[-1]["restore_ms"] = summarize(restores)
            self.metrics[f"snapstart.{n}.restore"] = summarize(restores)
            delete_functions(lam, [name])
            time.sleep(1.0)

    def _sequential_restores(self, target: str) -> None:
        """New copies one at a time: each measured invocation needs a new environment because the one before
        ended its own (``{"end": true}``)."""
        assert self.server is not None
        conn = http.client.HTTPConnection(HOST, self.server.port, timeout=60)
        wall, restore = [], []
        for _ in range(self.plan.cold):
            invoke_once(conn, target, b'{"end": true}')  # the current copy ends (Runtime.ExitError)
            time.sleep(PACE_S)
            status, ms, restore_ms, body = invoke_once(conn, target, b'{"sleep": 0}', _RESTORE_RE)
            if status == 200 and restore_ms is not None:
                wall.append(ms)
                restore.append(restore_ms)
            elif len(self.notes) < 30:
                self.notes.append(f"snapstart sequential: {status} {body[:200]!r}")
        conn.close()
        self.snap_sequential = {"first_invoke_ms": summarize(wall), "restore_ms": summarize(restore)}
        self.metrics["snapstart.sequential.first_invoke"] = summarize(wall)
        self.metrics["snapstart.sequential.restore"] = summarize(restore)
        first, restored = summarize(wall).get("median", 0), summarize(restore).get("median", 0)
        self.log(
            f"snapstart sequential: first invoke of a new copy p50 {first:.1f} ms, restore {restored:.1f} ms"
        )

    def _measure_burst(self, target: str, n: int, into: list[dict[str, Any]], label: str) -> None:
        assert self.server is not None
        time.sleep(1.0)  # stem cells replenished, the machine quiet
        window = Window(self.server).start()
        largest = n == max(self.plan.bursts)
        spy = self.profiler.record(f"{label}-{n}") if (self.profiler and largest) else None
        perf = perf_record(self.args.perf) if (self.args.perf and largest and label == "burst") else None
        with spy or contextlib.nullcontext(), perf or contextlib.nullcontext():
            result = asyncio.run(self._burst(target, n))
        result["cpu"] = cpu = window.stop()
        envs = max(1, result["environments"])
        result["server_cpu_ms_per_environment"] = cpu["server_cpu_pct"] * cpu["wall_s"] * 10 / envs
        result["descendants_cpu_ms_per_environment"] = cpu["descendants_cpu_pct"] * cpu["wall_s"] * 10 / envs
        into.append(result)
        self.metrics[f"{label}.{n}.latency"] = result["latency_ms"]
        self.log(
            f"{label} {n}: all done in {result['all_done_s']:.2f} s, {result['environments']} "
            f"environments ({result['environments_per_s']:.0f}/s), statuses {result['statuses']}, "
            f"server CPU {result['cpu']['server_cpu_pct']:.0f}%"
        )

    async def _burst(self, name: str, n: int) -> dict[str, Any]:
        assert self.server is not None
        port = self.server.port
        request = invoke_request(name, port)
        sem = asyncio.Semaphore(100)  # connect 100 at a time (the listen backlog), untimed

        async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            async with sem:
                return await asyncio.wait_for(asyncio.open_connection(HOST, port), 30)

        conns = await asyncio.gather(*(connect() for _ in range(n)))
        go = asyncio.Event()

        async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[Any, float, bytes]:
            await go.wait()
            t = time.perf_counter()
            try:
                writer.write(request)
                status, body = await asyncio.wait_for(read_response(reader), self.plan.burst_timeout)
                return status, time.perf_counter() - t, body
            except TimeoutError:
                return "timeout", time.perf_counter() - t, b""
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                return f"error {type(exc).__name__}", time.perf_counter() - t, b""
            finally:
                writer.close()

        tasks = [asyncio.create_task(one(r, w)) for r, w in conns]
        await asyncio.sleep(0.05)
        t0 = time.perf_counter()
        go.set()
        results = await asyncio.gather(*tasks)
        all_done = time.perf_counter() - t0
        statuses = collections.Counter(str(s) for s, _, _ in results)
        streams = {b for s, _, b in results if s == 200}
        sample = next((b[:300].decode(errors="replace") for s, _, b in results if s != 200 and b), None)
        if sample:
            self.notes.append(f"burst {n}: first non-200 body: {sample}")
        ok = [t * 1000 for s, t, _ in results if s == 200]
        return {
            "n": n,
            "all_done_s": all_done,
            "statuses": dict(statuses),
            "non_200": n - statuses.get("200", 0),
            "environments": len(streams),
            "environments_per_s": len(streams) / all_done,
            "latency_ms": summarize(ok),
        }

    # ---- 3. sustained throughput over many functions -------------------------------------------------------

    def phase_sustained(self, lam: Any, kind: Kind) -> None:
        assert self.server is not None
        plan = self.plan
        names = [f"many-{i}" for i in range(plan.sustained_functions)]
        create_functions(lam, [(n, kind) for n in names])
        conn = http.client.HTTPConnection(HOST, self.server.port, timeout=60)
        for name in names:  # warm-up pass: one environment each
            invoke_once(conn, name)
        conn.close()
        asyncio.run(self._load(names, plan.sustained_clients, plan.warmup, seed=1))  # enough environments
        envs_before = len(self.server.environments())
        window = Window(self.server).start()
        with self.profiler.record("sustained") if self.profiler else contextlib.nullcontext():
            result = asyncio.run(self._load(names, plan.sustained_clients, plan.duration, seed=2))
        result["cpu"] = window.stop()
        result["environments_before"] = envs_before
        result["environments_after"] = len(self.server.environments())
        self.sustained = result
        self.metrics["sustained.latency"] = result["latency_ms"]
        self.log(
            f"sustained: {result['invokes_per_s']:.0f} invokes/s, p50 "
            f"{result['latency_ms'].get('median', 0):.2f} ms, "
            f"p99 {result['latency_ms'].get('p99', 0):.2f} ms, "
            f"errors {result['errors']}; environments {envs_before} -> {result['environments_after']}"
        )
        delete_functions(lam, names)

    async def _load(self, names: list[str], clients: int, duration: float, seed: int) -> dict[str, Any]:
        assert self.server is not None
        port = self.server.port
        requests = [invoke_request(n, port) for n in names]
        rng = random.Random(seed)
        latencies: list[float] = []
        statuses: collections.Counter[str] = collections.Counter()
        conns = [await asyncio.wait_for(asyncio.open_connection(HOST, port), 30) for _ in range(clients)]
        budget = [200_000]

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while budget[0] > 0 and time.perf_counter() < deadline:
                    budget[0] -= 1
                    t = time.perf_counter()
                    writer.write(requests[rng.randrange(len(requests))])
                    status, _ = await asyncio.wait_for(read_response(reader), 60)
                    latencies.append((time.perf_counter() - t) * 1000)
                    statuses[str(status)] += 1
            finally:
                writer.close()

        t0 = time.perf_counter()
        deadline = t0 + duration
        await asyncio.gather(*(client(r, w) for r, w in conns))
        elapsed = time.perf_counter() - t0
        return {
            "functions": len(names),
            "clients": clients,
            "duration_s": elapsed,
            "invokes": len(latencies),
            "invokes_per_s": len(latencies) / elapsed,
            "statuses": dict(statuses),
            "errors": len(latencies) - statuses.get("200", 0),
            "latency_ms": summarize(latencies),
        }

    # ---- 4. memory per idle environment --------------------------------------------------------------------

    def phase_memory(self, lam: Any, kind: Kind) -> None:
        assert self.server is not None
        k = self.plan.memory_envs
        names = [f"mem-{i}" for i in range(k)]
        create_functions(lam, [(n, kind) for n in names])
        before = set(self.server.environments())
        conn = http.client.HTTPConnection(HOST, self.server.port, timeout=60)
        statuses = collections.Counter(invoke_once(conn, n)[0] for n in names)
        conn.close()
        time.sleep(1.0)  # idle, settled
        envs = {slot: pids for slot, pids in self.server.environments().items() if slot not in before}
        uss, pss, rss, procs = [], [], [], []
        for pids in envs.values():
            rolls = [smaps_rollup(p) for p in pids]
            uss.append(sum(r.get("Private_Clean", 0) + r.get("Private_Dirty", 0) for r in rolls) / 1024)
            pss.append(sum(r.get("Pss", 0) for r in rolls) / 1024)
            rss.append(sum(r.get("Rss", 0) for r in rolls) / 1024)
            procs.append(len(pids))
        server_roll = smaps_rollup(self.server.pid)
        self.memory = {
            "runtime": kind.runtime,
            "functions": k,
            "statuses": {str(s): c for s, c in statuses.items()},
            "environments_found": len(envs),
            "processes_per_environment": summarize(procs, "processes"),
            "uss_mb": summarize(uss, "MB"),
            "pss_mb": summarize(pss, "MB"),
            "rss_mb": summarize(rss, "MB"),
            "server_rss_mb": vm_rss_kb(self.server.pid) / 1024,
            "server_uss_mb": (server_roll.get("Private_Clean", 0) + server_roll.get("Private_Dirty", 0))
            / 1024,
            "how": "processes in a cgroup under shoal/ running as a non-root uid, grouped by cgroup",
        }
        self.metrics["memory.env_uss"] = self.memory["uss_mb"]
        self.metrics["memory.env_pss"] = self.memory["pss_mb"]
        if len(envs) != k:
            self.notes.append(f"memory: found {len(envs)} environments for {k} functions")
        self.log(
            f"memory: {len(envs)} environments, USS p50 {self.memory['uss_mb'].get('median', 0):.2f} MB, "
            f"PSS p50 {self.memory['pss_mb'].get('median', 0):.2f} MB; server RSS "
            f"{self.memory['server_rss_mb']:.0f} MB"
        )
        delete_functions(lam, names)

    # ---- 5. environments per second, sequentially ----------------------------------------------------------

    def phase_sequential(self, lam: Any, kind: Kind) -> None:
        assert self.server is not None
        names = [f"seq-{i}" for i in range(self.plan.sequential)]
        create_functions(lam, [(n, kind) for n in names])
        time.sleep(1.0)
        conn = http.client.HTTPConnection(HOST, self.server.port, timeout=60)
        conn.connect()
        wall, init = [], []
        statuses: collections.Counter[int] = collections.Counter()
        window = Window(self.server).start()
        t0 = time.perf_counter()
        with self.profiler.record("sequential") if self.profiler else contextlib.nullcontext():
            for name in names:
                if time.perf_counter() - t0 > self.plan.phase_limit:
                    self.notes.append("sequential: stopped at the phase's time limit")
                    break
                status, ms, init_ms, _ = invoke_once(conn, name)
                statuses[status] += 1
                wall.append(ms)
                if init_ms is not None:
                    init.append(init_ms)
        elapsed = time.perf_counter() - t0
        conn.close()
        started = statuses.get(200, 0)
        self.sequential = {
            "functions": len(names),
            "elapsed_s": elapsed,
            "statuses": {str(s): c for s, c in statuses.items()},
            "environments_per_s": started / elapsed,
            "first_invoke_ms": summarize(wall),
            "init_duration_ms": summarize(init),
            "cpu": window.stop(),
        }
        cpu = self.sequential["cpu"]
        for who in ("server", "descendants"):
            self.sequential[f"{who}_cpu_ms_per_environment"] = (
                cpu[f"{who}_cpu_pct"] * cpu["wall_s"] * 10 / max(1, started)
            )
        self.metrics["sequential.first_invoke"] = self.sequential["first_invoke_ms"]
        self.metrics["sequential.init_duration"] = self.sequential["init_duration_ms"]
        self.log(
            f"sequential: {started} environments in {elapsed:.2f} s = "
            f"{self.sequential['environments_per_s']:.1f}/s"
        )
        delete_functions(lam, names)

    # ---- the run -------------------------------------------------------------------------------------------

    def run(self, stack: contextlib.ExitStack) -> dict[str, Any]:
        started = time.perf_counter()
        machine = machine_info()
        busy0, total0 = machine_busy()
        time.sleep(1.0)
        busy1, total1 = machine_busy()
        background = 100 * (busy1 - busy0) / max(1, total1 - total0)
        if background > 10:
            self.notes.append(
                f"the machine was {background:.0f}% busy before the benchmark started (other "
                "processes): numbers are noisier than on an idle machine"
            )
        tmp = Path(tempfile.mkdtemp(prefix="shoal-scaling-"))
        stack.callback(shutil.rmtree, tmp, True)
        # Each environment reserves its MemorySize (128 MB) against the host budget (default 80% of RAM) and
        # Shoal throttles past it; the burst needs max(bursts) busy environments at once, so make room.
        budget = max(self.plan.bursts) * 128 + 4096
        extra = [
            "--account-concurrency",
            str(ACCOUNT_CONCURRENCY),
            "--host-memory-mb",
            str(budget),
            *self.args.server_arg,
        ]
        server = self.server = ShoalServer(tmp / "data", extra)

        def stop_server() -> None:
            leftovers = server.stop()
            self.out["leftover_processes"] = leftovers
            self.out["leftover_cgroup_dirs"] = server.cgroups_left
            if leftovers:
                print(
                    f"WARNING: {len(leftovers)} processes of the server were left and killed:\n  "
                    + "\n  ".join(leftovers),
                    file=sys.stderr,
                )

        stack.callback(stop_server)
        self.log(f"starting {shlex.join(server.argv)}")
        server.start()
        self.log(server.ready_line.split(": ", 1)[-1])
        time.sleep(1.0)
        rss_start = vm_rss_kb(server.pid)
        lam = lambda_client(server.endpoint)
        if self.args.py_spy:
            self.profiler = Profiler(Path(self.args.py_spy), server.pid)
        kinds = choose_kinds(server.runtimes(), tmp, self.notes)
        py = next((k for k in kinds if k.runtime.startswith("python")), None)
        if py is None:
            raise RuntimeError("the server offers no python3.X runtime: nothing to measure")
        phase_t: dict[str, float] = {}

        def timed(name: str, fn: Callable[[], None]) -> None:
            t = time.perf_counter()
            fn()
            phase_t[name] = time.perf_counter() - t
            server.descendants()  # remember every process it started, for the final check

        phases: dict[str, Callable[[], None]] = {
            "cold": lambda: self.phase_cold(lam, kinds),
            "memory": lambda: self.phase_memory(lam, py),
            "sequential": lambda: self.phase_sequential(lam, py),
            "sustained": lambda: self.phase_sustained(lam, py),
            "burst": lambda: self.phase_burst(lam, py),
            "snapstart": lambda: self.phase_snapstart(lam, py),
        }
        for name, fn in phases.items():
            if name in self.args.phases:
                timed(name, fn)
        rss_end = vm_rss_kb(server.pid)
        self.out.update(
            {
                "machine": {**machine, "background_busy_pct_at_start": background},
                "command": shlex.join([sys.executable, *sys.argv]),
                "server": {
                    "argv": server.argv,
                    "banner": server.ready_line,
                    "sandbox": server.sandbox(),
                    "runtimes_offered": server.runtimes(),
                    "startup_ms": server.startup_ms,
                    "rss_mb_start": rss_start / 1024,
                    "rss_mb_end": rss_end / 1024,
                    "warning_or_error_records": server.problem_count,
                    "first_problems": server.problems,
                },
                "plan": self.plan.__dict__,
                "metrics": self.metrics,
                "cold": self.cold,
                "burst": self.bursts,
                "snapstart_burst": self.snap_bursts,
                "snapstart_sequential": self.snap_sequential,
                "sustained": self.sustained,
                "memory": self.memory,
                "sequential": self.sequential,
                "profile": self.profiler.results if self.profiler else {},
                "phase_s": phase_t,
                "notes": self.notes,
            }
        )
        self.out["total_s"] = time.perf_counter() - started
        return self.out

    # ---- the table -----------------------------------------------------------------------------------------

    def table(self) -> str:
        o = self.out
        m = o["machine"]
        srv = o["server"]
        lines = [
            f"Shoal scaling benchmark — {m['cpu_model']}, {m['cores_usable']} cores, {m['memory_mb']:,} MB, "
            f"Linux {m['kernel']}, Python {m['python']}, commit {m['git_commit']}",
            f"command: {o['command']}",
            f"server:  {shlex.join(srv['argv'][1:])}",
            f"sandbox: {srv['sandbox']}; machine {m['background_busy_pct_at_start']:.0f}% busy before start "
            f"(load avg {m['loadavg_at_start'][0]:.1f}); total {o['total_s']:.0f} s",
        ]

        def f(v: Any, d: int = 1) -> str:
            return "-" if v is None else f"{v:,.{d}f}"

        if self.cold:
            lines += [
                "",
                f"1. cold start, N={self.plan.cold} new functions per runtime and mode (ms; 'back-to-back': "
                f"no pause; 'paced': {PACE_S} s before each; 'first': the runtime's very first environment)",
                f"   {'runtime':<16}{'mode':<14}{'first invoke p50':>17}{'p99':>9}{'min':>8}{'max':>9}"
                f"{'Init Dur p50':>14}{'p99':>9}{'n':>4}",
            ]
        for row in self.cold:
            for mode, label in (("first", "first"), ("b2b", "back-to-back"), ("paced", "paced")):
                w, i = row[mode]["first_invoke_ms"], row[mode]["init_duration_ms"]
                lines.append(
                    f"   {row['runtime']:<16}{label:<14}{f(w.get('median')):>17}{f(w.get('p99')):>9}"
                    f"{f(w.get('min')):>8}{f(w.get('max')):>9}{f(i.get('median')):>14}{f(i.get('p99')):>9}"
                    f"{w['n']:>4}"
                )
            for mode, label in (("b2b", "warm b2b"), ("paced", "warm paced")):
                w = row.get("warm", {}).get(mode)
                if w:
                    lines.append(
                        f"   {'':<16}{label:<14}{f(w.get('median')):>17}{f(w.get('p99')):>9}"
                        f"{f(w.get('min')):>8}{f(w.get('max')):>9}{'':>14}{'':>9}{w['n']:>4}"
                    )
            if row["errors"]:
                lines.append(f"   {'':<16}non-200: {row['errors']}")
        for title, bursts in (
            (
                "2. burst: N concurrent first invocations of a fresh function (handler sleeps 0.1 s)",
                self.bursts,
            ),
            (
                "2b. snapstart: N concurrent invocations of a published SnapStart version (its snapshot "
                "made, one copy warm): new environments forked from the snapshot",
                self.snap_bursts,
            ),
        ):
            if not bursts:
                continue
            lines += [
                "",
                title,
                f"   {'N':>5}{'all done s':>12}{'envs':>6}{'envs/s':>8}{'lat p50':>9}{'p99':>9}"
                f"{'server%':>9}{'envs%':>7}{'other%':>8}{'srv ms/env':>12}{'envs ms/env':>13}  statuses",
            ]
            for b in bursts:
                lat, cpu = b["latency_ms"], b["cpu"]
                lines.append(
                    f"   {b['n']:>5}{b['all_done_s']:>12.2f}{b['environments']:>6}"
                    f"{b['environments_per_s']:>8.0f}{f(lat.get('median'), 0):>9}{f(lat.get('p99'), 0):>9}"
                    f"{cpu['server_cpu_pct']:>9.0f}{cpu['descendants_cpu_pct']:>7.0f}{cpu['other_cpu_pct']:>8.0f}"
                    f"{b['server_cpu_ms_per_environment']:>12.1f}"
                    f"{b['descendants_cpu_ms_per_environment']:>13.1f}  {b['statuses']}"
                )
                restore = b.get("restore_ms")
                if restore:
                    lines.append(
                        f"   {'':>5}Restore Duration of its {restore['n']} copies: p50 "
                        f"{f(restore.get('median'))} ms, p99 {f(restore.get('p99'))} ms"
                    )
        q = self.snap_sequential
        if q:
            w, r = q["first_invoke_ms"], q["restore_ms"]
            lines.append(
                f"   one at a time ({w.get('n', 0)} new copies, {PACE_S} s apart): first invoke p50 "
                f"{f(w.get('median'))} ms, p99 {f(w.get('p99'))}; Restore Duration p50 "
                f"{f(r.get('median'))} ms, p99 {f(r.get('p99'))}"
            )
        s = self.sustained
        if s:
            lat, cpu = s["latency_ms"], s["cpu"]
            lines += [
                "",
                f"3. sustained: {s['functions']} functions, {s['clients']} clients each picking a random "
                f"function, {s['duration_s']:.1f} s after warm-up",
                f"   {s['invokes_per_s']:,.0f} invokes/s, latency p50 {f(lat.get('median'), 2)} ms, p99 "
                f"{f(lat.get('p99'), 2)} ms, max {f(lat.get('max'), 1)} ms; non-200 {s['errors']}; "
                f"environments {s['environments_before']} -> {s['environments_after']}",
                f"   CPU (% of one core): server {cpu['server_cpu_pct']:.0f}%, environments "
                f"{cpu['descendants_cpu_pct']:.0f}%, client {cpu['client_cpu_pct']:.0f}%, other processes "
                f"{cpu['other_cpu_pct']:.0f}%",
            ]
        mem = self.memory
        if mem:
            lines += [
                "",
                f"4. memory: {mem['environments_found']} idle {mem['runtime']} environments "
                f"({mem['functions']} functions, one invoke each)",
                f"   per environment: USS p50 {f(mem['uss_mb'].get('median'), 2)} MB, max "
                f"{f(mem['uss_mb'].get('max'), 2)}; PSS p50 {f(mem['pss_mb'].get('median'), 2)} MB, max "
                f"{f(mem['pss_mb'].get('max'), 2)}; RSS p50 {f(mem['rss_mb'].get('median'), 1)} MB",
                f"   server: RSS {srv['rss_mb_start']:.0f} MB after start, "
                f"{mem['server_rss_mb']:.0f} MB then, "
                f"{srv['rss_mb_end']:.0f} MB at the end (USS then {mem['server_uss_mb']:.0f} MB)",
            ]
        q = self.sequential
        if q:
            w, i = q["first_invoke_ms"], q["init_duration_ms"]
            lines += [
                "",
                f"5. sequential: {q['functions']} new functions first-invoked one after another",
                f"   {q['environments_per_s']:.1f} environments/s ({q['elapsed_s']:.2f} s); first invoke p50 "
                f"{f(w.get('median'))} ms, p99 {f(w.get('p99'))}; Init Duration p50 {f(i.get('median'))} ms, "
                f"p99 {f(i.get('p99'))}; statuses {q['statuses']}",
                f"   CPU (% of one core): server {q['cpu']['server_cpu_pct']:.0f}%, environments "
                f"{q['cpu']['descendants_cpu_pct']:.0f}%, other processes {q['cpu']['other_cpu_pct']:.0f}%; "
                f"CPU per environment: server {q['server_cpu_ms_per_environment']:.1f} ms, environments "
                f"{q['descendants_cpu_ms_per_environment']:.1f} ms",
            ]
        for name, prof in (o.get("profile") or {}).items():
            lines += [
                "",
                f"profile {name}: server busy {prof['busy_pct_of_one_thread']:.0f}% of one thread "
                f"({prof['samples']} samples); top self frames:",
            ]
            lines += [f"   {pct:5.1f}%  {frame[:110]}" for frame, pct in prof["top_self"][:8]]
        lines += ["", "phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in o["phase_s"].items())]
        if srv["warning_or_error_records"]:
            lines.append(f"server logged {srv['warning_or_error_records']} warning/error records; first:")
            for block in srv["first_problems"][:3]:
                lines += [f"   {ln[:160]}" for ln in block[:6]]
        for note in self.notes:
            lines.append(f"note: {note}")
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer samples and shorter runs (under 60 s)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    parser.add_argument(
        "--py-spy",
        metavar="DIR",
        help="record the server with py-spy during the largest burst, the sustained run and the "
        "sequential run (raw stacks in DIR, top frames in the table)",
    )
    parser.add_argument(
        "--perf",
        metavar="PATH",
        help="record the whole machine with 'perf record -a -g' during the largest on-demand burst "
        "(perf.data at PATH; read it with 'perf report -i PATH')",
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for 'shoal server' (repeat; e.g. --server-arg=--stem-cells=8)",
    )
    parser.add_argument(
        "--phases", default=",".join(PHASES), help=f"comma-separated phases to run [{','.join(PHASES)}]"
    )
    parser.add_argument("--bursts", help="comma-separated burst sizes [10,100,500; --quick 10,100]")
    args = parser.parse_args(argv)
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    quick = args.quick
    plan = Plan(
        cold=5 if quick else 20,
        bursts=[int(b) for b in args.bursts.split(",")]
        if args.bursts
        else [10, 100]
        if quick
        else [10, 100, 500],
        sustained_functions=20,
        sustained_clients=16,
        duration=2.0 if quick else 5.0,
        warmup=0.5 if quick else 1.0,
        memory_envs=20,
        sequential=50,
        phase_limit=30.0 if quick else 60.0,
        burst_timeout=60.0,
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
    leftovers = out.get("leftover_processes", [])
    if out.get("leftover_cgroup_dirs"):
        print(f"note: cgroup directories of the server left after it stopped: {out['leftover_cgroup_dirs']}")
    print(
        f"after stop: {len(leftovers)} processes of the server were left" + (" (killed)" if leftovers else "")
    )
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2, default=str) + "\n")
        print(f"wrote {path}", file=sys.stderr)
    return 1 if leftovers else 0


if __name__ == "__main__":
    raise SystemExit(main())

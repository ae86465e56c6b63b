"""A ``shoal server`` subprocess for end-to-end tests, and small helpers shared by the logs and CLI tests.

The server runs on a free loopback port with its own data directory. Stopping it is SIGTERM, a grace period,
SIGKILL; then nothing it started may be left: no process that was its descendant, whose command line names
its data directory, or whose environment points at its endpoint.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
from botocore.config import Config as BotoConfig

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/e2e"
START_DEADLINE = 30.0
STOP_GRACE = 15.0
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "e2e-secret",
    "AWS_DEFAULT_REGION": REGION,
}

T = TypeVar("T")


def runtime() -> str:
    """The Python runtime the tests deploy: python3.12 where the host has it (the CLI's default)."""
    for candidate in ("python3.12", "python3.11", "python3.13"):
        if shutil.which(candidate):
            return candidate
    pytest.skip("no python3.11-3.13 interpreter on this host to run functions with")
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    probe: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.1, what: str = "condition"
) -> T:
    """Poll ``probe`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last value: {last!r}")


def make_zip(files: Mapping[str, str | bytes]) -> bytes:
    """An in-memory deployment package from ``{filename: source}``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, content)
    return buf.getvalue()


# ---- process bookkeeping ---------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(ppid, state, start time) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    return int(fields[1]), fields[0], fields[19]


def _all_pids() -> Iterator[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def descendants(root: int) -> set[tuple[int, str]]:
    """(pid, start time) of every live descendant of ``root``."""
    children: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for pid in _all_pids():
        st = _stat(pid)
        if st is not None:
            children.setdefault(st[0], []).append(pid)
            starts[pid] = st[2]
    out: set[tuple[int, str]] = set()
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out.add((pid, starts.get(pid, "")))
        todo.extend(children.get(pid, []))
    return out


def _alive(pid: int, start: str) -> bool:
    st = _stat(pid)
    return st is not None and st[2] == start and st[1] not in ("Z", "X")


def _mentions(pid: int, name: str, text: bytes) -> bool:
    try:
        return text in Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return False


class ShoalServer:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.data_dir = base / "data"
        self.log_path = base / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.endpoint = ""

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> ShoalServer:
        for _attempt in range(3):  # the port may be taken between choosing and binding: then another one
            self.port = free_port()
            self.endpoint = f"http://127.0.0.1:{self.port}"
            with self.log_path.open("ab") as log:
                self.proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "shoal",
                        "server",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(self.port),
                        "--data-dir",
                        str(self.data_dir),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            if self._wait_ready():
                return self
            self.stop_and_check()
        raise RuntimeError(f"shoal server did not start; its log:\n{self.log_text()}")

    def _wait_ready(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if "Shoal listening on" in self.log_text():
                try:
                    with urllib.request.urlopen(f"{self.endpoint}/2015-03-31/functions", timeout=2) as r:
                        ok = r.status == 200
                except (urllib.error.URLError, OSError):
                    ok = False
                if ok and self.proc.poll() is None:  # still alive: the port is really ours
                    return True
            time.sleep(0.05)
        return False

    def stop_and_check(self) -> None:
        """SIGTERM, grace, SIGKILL; then assert that no process the server started is left."""
        if self.proc is None:
            return
        spawned = descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        marker_cmd = str(self.data_dir).encode()
        marker_env = f"={self.endpoint}\0".encode()

        def leftovers() -> list[int]:
            left = [pid for pid, start in spawned if _alive(pid, start)]
            for pid in _all_pids():
                if pid == os.getpid() or pid in left:
                    continue
                if _mentions(pid, "cmdline", marker_cmd) or _mentions(pid, "environ", marker_env):
                    st = _stat(pid)
                    if st is not None and st[1] not in ("Z", "X"):
                        left.append(pid)
            return left

        deadline = time.monotonic() + 5.0
        left = leftovers()
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = leftovers()
        for pid in left:  # these are ours: clean up, then fail
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        assert not left, f"processes left behind by shoal server {self.endpoint}: {left}\n{self.log_text()}"

    # ---- clients -----------------------------------------------------------------------------------------

    def client(self, service: str, read_timeout: int = 70) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=BotoConfig(
                retries={"max_attempts": 1, "mode": "standard"}, read_timeout=read_timeout, connect_timeout=10
            ),
        )


def serve(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[ShoalServer]:
    """Body of a module-scoped fixture: a started server, stopped and checked at teardown."""
    server = ShoalServer(tmp_path_factory.mktemp(name))
    server.start()
    try:
        yield server
    finally:
        server.stop_and_check()


def client_env(**extra: str) -> dict[str, str]:
    """The environment for a client subprocess: dummy credentials, no user config, no metadata service."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SHOAL_"))}
    env.update(CREDENTIALS)
    env.update(
        {
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class LineReader:
    """Reads a subprocess's text stream in a thread, so a test can wait for a line with a deadline."""

    def __init__(self, stream: Any) -> None:
        import queue
        import threading

        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 20.0) -> str:
        """The first line (read so far or later) that satisfies ``predicate``; fails after ``timeout``."""
        import queue

        for line in self.lines:
            if predicate(line):
                return line
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                got = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if got is None:
                raise AssertionError(f"stream ended before the line appeared; lines: {self.lines}")
            self.lines.append(got)
            if predicate(got):
                return got
        raise AssertionError(f"no matching line within {timeout} s; lines: {self.lines}")

    def rest(self, timeout: float = 10.0) -> list[str]:
        """Every line until the stream ends (the process exited)."""
        self._thread.join(timeout)
        while not self._queue.empty():
            line = self._queue.get_nowait()
            if line is not None:
                self.lines.append(line)
        return self.lines

"""A server that crashes leaves environments, stem cells and cgroups behind; the next start on the same data
directory removes all of it before serving (docs/sandbox.md, crash safety)."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e._server import ShoalServer, make_zip, runtime, wait_for
from tests.integration.conftest import NS_OK, NS_WHY

pytestmark = pytest.mark.skipif(not NS_OK, reason=f"namespace sandbox unavailable on this host: {NS_WHY}")


def _instance_dirs(data_dir: Path) -> list[Path]:
    instance = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return [Path("/sys/fs/cgroup") / c / "shoal" / instance for c in ("memory", "cpu", "pids")] + [
        Path("/sys/fs/cgroup/shoal") / instance
    ]


def _cgroup_pids(data_dir: Path) -> set[int]:
    pids: set[int] = set()
    for base in _instance_dirs(data_dir):
        if base.is_dir():
            for slot in base.iterdir():
                procs = slot / "cgroup.procs"
                if procs.exists():
                    pids.update(int(p) for p in procs.read_text().split())
    return pids


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_restart_after_a_crash_removes_what_the_crash_left(tmp_path: Path) -> None:
    server = ShoalServer(tmp_path).start()
    lam: Any = server.client("lambda")
    try:
        lam.create_function(FunctionName="survivor", Runtime=runtime(), Handler="app.handler",
                            Role="arn:aws:iam::123456789012:role/r",
                            Code={"ZipFile": make_zip({"app.py": "def handler(e, c):\n    return 'ok'\n"})})
        lam.get_waiter("function_active_v2").wait(FunctionName="survivor", WaiterConfig={"Delay": 1})
        assert lam.invoke(FunctionName="survivor")["Payload"].read() == b'"ok"'
        # a warm environment, frozen while idle: it cannot notice the crash and leave by itself
        wait_for(lambda: any(_state(pid) == "T" for pid in _cgroup_pids(server.data_dir)),
                 what="a frozen warm environment")
        left = {pid for pid in _cgroup_pids(server.data_dir) if _state(pid) == "T"}
        assert server.proc is not None
        os.killpg(server.proc.pid, signal.SIGKILL)  # the crash: no shutdown at all
        server.proc.wait(10)
        assert any(_alive(pid) for pid in left), "the crash should have left environments behind"

        restarted = ShoalServer(tmp_path).start()  # same data directory
        try:
            deadline = time.monotonic() + 10
            while any(_alive(pid) for pid in left) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not any(_alive(pid) for pid in left), "the restart must kill what the crash left"
            lam = restarted.client("lambda")
            assert lam.invoke(FunctionName="survivor")["Payload"].read() == b'"ok"'  # acknowledged work kept
        finally:
            restarted.stop_and_check()
        assert not _cgroup_pids(restarted.data_dir)
        leftover = [d for d in _instance_dirs(restarted.data_dir) if d.exists()]
        assert not leftover, f"cgroups left after a clean stop: {leftover}"
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.stop_and_check()

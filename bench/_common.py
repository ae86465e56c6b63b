"""What the benchmarks share: percentile summaries, /proc reading and child-process hygiene."""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import platform
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"

try:
    _PRCTL: Any = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - not glibc/Linux
    _PRCTL = None


def rank(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def summarize(values: Iterable[float], unit: str = "ms") -> dict[str, Any]:
    """Count, median, p99, min, max and mean of ``values`` (just the count and unit when empty)."""
    s = sorted(values)
    if not s:
        return {"n": 0, "unit": unit}
    return {
        "n": len(s),
        "unit": unit,
        "median": rank(s, 0.5),
        "p99": rank(s, 0.99),
        "min": s[0],
        "max": s[-1],
        "mean": sum(s) / len(s),
    }


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat from "state" on (None when the process is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # comm may hold spaces


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:
    """In a child before exec: get SIGTERM if this benchmark dies without cleaning up (Linux)."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def shoal_module() -> str:
    """Where the server subprocess imports ``shoal`` from (PYTHONPATH can point it at another checkout)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            [sys.executable, "-c", "import shoal; print(shoal.__file__)"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return str(Path(out.stdout.strip()).parent)
    return ""


def machine_info() -> dict[str, Any]:
    """The machine, interpreter and commit the figures are taken with (``+dirty``: src/ has changes)."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        here = Path(__file__).resolve().parent

        def git(*argv: str) -> str:
            return subprocess.run(
                ["git", *argv], capture_output=True, text=True, timeout=5, cwd=here, check=False
            ).stdout.strip()

        commit = git("rev-parse", "--short", "HEAD")
        module = shoal_module()
        if module and not module.startswith(str(here.parent / "src")):
            commit = f"(shoal imported from {module}; this checkout is at {commit})"
        elif commit and git("status", "--porcelain", "--untracked-files=no", "--", "../src"):
            commit += "+dirty"  # src/ has uncommitted changes: the numbers are for the working tree
    return {
        "cpu_model": model or platform.processor(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory_mb": mem_kb // 1024,
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "python_executable": sys.executable,
        "uid": os.getuid(),
        "loadavg_at_start": os.getloadavg(),
        "git_commit": commit,
    }

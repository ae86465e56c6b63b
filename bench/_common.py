"""What the benchmarks share: percentile summaries, /proc reading and child-process hygiene."""

from __future__ import annotations

import ctypes
import math
import signal
import socket
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

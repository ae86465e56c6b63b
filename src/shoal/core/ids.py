"""Identifiers: request ids, revision ids, log stream names."""

from __future__ import annotations

import time
import uuid


def request_id() -> str:
    return str(uuid.uuid4())


def revision_id() -> str:
    return str(uuid.uuid4())


def log_stream_name(version: str, started_at: float) -> str:
    """``YYYY/MM/DD/[<version>]<32 hex>``, the date being the environment's start in UTC (spec §5.1)."""
    return time.strftime("%Y/%m/%d", time.gmtime(started_at)) + f"/[{version}]{uuid.uuid4().hex}"


def trace_id(now: float) -> str:
    """An X-Ray trace header for ``Lambda-Runtime-Trace-Id``."""
    root = f"1-{int(now):08x}-{uuid.uuid4().hex[:24]}"
    return f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=0;Lineage=1:{uuid.uuid4().hex[:8]}:0"

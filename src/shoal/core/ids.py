"""Identifiers: request ids, revision ids, log stream names."""

from __future__ import annotations

import os
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
    random = os.urandom(24).hex()  # one getrandom call: this runs on every invocation
    return f"Root=1-{int(now):08x}-{random[:24]};Parent={random[24:40]};Sampled=0;Lineage=1:{random[40:48]}:0"

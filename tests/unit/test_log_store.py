"""The file log store: buffered writes, reads back in order, and the per-group size bound (oldest streams go
first), which it keeps without re-reading the group's files on every flush."""

from __future__ import annotations

import os
import time
from pathlib import Path

from shoal.logs.store import FileLogStore

ACCOUNT = "123456789012"
GROUP = "/aws/lambda/f"


def emit_stream(store: FileLogStore, stream: str, count: int, size: int = 100) -> None:
    for i in range(count):
        store.emit(ACCOUNT, GROUP, stream, 1_000 + i, "x" * size)


def group_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*.log"))


def test_events_come_back_in_order_per_stream(tmp_path: Path) -> None:
    store = FileLogStore(tmp_path)
    store.emit(ACCOUNT, GROUP, "s1", 1, "first")
    store.emit(ACCOUNT, GROUP, "s2", 2, "other")
    store.emit(ACCOUNT, GROUP, "s1", 3, "second")
    assert store.flush() == 3
    assert store.flush() == 0
    got = [(e.stream, e.timestamp, e.message) for e in store.events(ACCOUNT, GROUP)]
    assert got == [("s1", 1, "first"), ("s1", 3, "second"), ("s2", 2, "other")]


def test_a_group_over_its_bound_loses_its_oldest_streams(tmp_path: Path) -> None:
    store = FileLogStore(tmp_path, group_max_bytes=5_000)
    for n in range(6):  # ~1.3 KB a stream: six streams are over the bound
        emit_stream(store, f"s{n}", 10)
        store.flush()
        past = time.time() - 100 + n  # distinct, increasing modification times
        os.utime(tmp_path / ACCOUNT / "%2Faws%2Flambda%2Ff" / f"s{n}.log", (past, past))
    left = sorted(s.name for s in store.streams(ACCOUNT, GROUP))
    one_stream = next(s.stored_bytes for s in store.streams(ACCOUNT, GROUP))
    assert 0 < len(left) < 6 and left == [f"s{n}" for n in range(6 - len(left), 6)]  # the newest ones
    assert group_bytes(tmp_path) <= 5_000 < group_bytes(tmp_path) + one_stream  # no more went than needed


def test_the_bound_counts_what_an_earlier_run_left(tmp_path: Path) -> None:
    first = FileLogStore(tmp_path, group_max_bytes=5_000)
    for n in range(3):
        emit_stream(first, f"old{n}", 10)
        first.flush()
        past = time.time() - 200 + n
        os.utime(tmp_path / ACCOUNT / "%2Faws%2Flambda%2Ff" / f"old{n}.log", (past, past))
    again = FileLogStore(tmp_path, group_max_bytes=5_000)  # a restart: nothing counted in memory yet
    for n in range(2):
        emit_stream(again, f"new{n}", 10)
        again.flush()
    names = sorted(s.name for s in again.streams(ACCOUNT, GROUP))
    assert "old0" not in names and {"new0", "new1"} <= set(names)
    assert group_bytes(tmp_path) <= 5_000


def test_a_removed_group_starts_again(tmp_path: Path) -> None:
    store = FileLogStore(tmp_path)
    emit_stream(store, "s", 2)
    store.flush()
    store.delete_group(ACCOUNT, GROUP)
    assert not store.has_group(ACCOUNT, GROUP)
    emit_stream(store, "s", 1)
    store.flush()
    assert [e.message for e in store.events(ACCOUNT, GROUP)] == ["x" * 100]

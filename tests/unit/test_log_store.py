"""The file log store: buffered writes into a group's segments, reads back in order, the per-group size bound
(oldest segments go first), an index kept by flushes that equals one rebuilt from disk, stable positions, and
what a crash or an earlier version left behind."""

from __future__ import annotations

from pathlib import Path

from shoal.logs.store import SUFFIX, FileLogStore, LogEvent

ACCOUNT = "123456789012"
GROUP = "/aws/lambda/f"
GROUP_DIR = "%2Faws%2Flambda%2Ff"


def emit_stream(store: FileLogStore, stream: str, count: int, size: int = 100) -> None:
    for i in range(count):
        store.emit(ACCOUNT, GROUP, stream, 1_000 + i, "x" * size)


def segments(root: Path) -> list[Path]:
    return sorted((root / ACCOUNT / GROUP_DIR).glob(f"*{SUFFIX}"))


def group_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in segments(root))


def snapshot(store: FileLogStore) -> tuple[list[tuple[object, ...]], list[LogEvent]]:
    infos = sorted((s.name, s.first_event, s.last_event, s.stored_bytes) for s in store.streams(ACCOUNT, GROUP))
    return infos, list(store.events(ACCOUNT, GROUP))


def test_events_come_back_in_order_per_stream(tmp_path: Path) -> None:
    store = FileLogStore(tmp_path)
    store.emit(ACCOUNT, GROUP, "s1", 1, "first")
    store.emit(ACCOUNT, GROUP, "s2", 2, "other")
    store.emit(ACCOUNT, GROUP, "s1", 3, "second")
    assert store.flush() == 3
    assert store.flush() == 0
    store.emit(ACCOUNT, GROUP, "s2", 4, "later")
    store.flush()
    got = [(e.stream, e.timestamp, e.message) for e in store.events(ACCOUNT, GROUP)]
    assert got == [("s1", 1, "first"), ("s1", 3, "second"), ("s2", 2, "other"), ("s2", 4, "later")]
    assert [e.message for e in store.events(ACCOUNT, GROUP, ["s2"])] == ["other", "later"]
    infos = {s.name: (s.first_event, s.last_event) for s in store.streams(ACCOUNT, GROUP)}
    assert infos == {"s1": (1, 3), "s2": (2, 4)}


def test_many_new_streams_go_to_one_file(tmp_path: Path) -> None:
    """A burst of new environments (a stream each) appends to the group's segment: no file per stream."""
    store = FileLogStore(tmp_path)
    for n in range(200):
        emit_stream(store, f"2026/11/23/[$LATEST]{n:032x}", 3)
    store.flush()
    assert len(segments(tmp_path)) == 1
    assert len(store.streams(ACCOUNT, GROUP)) == 200


def test_a_group_over_its_bound_loses_its_oldest_segments(tmp_path: Path) -> None:
    store = FileLogStore(tmp_path, group_max_bytes=40_000)  # segments of 5,000 bytes
    for n in range(60):  # ~1.4 KB a stream, a flush each: ~84 KB written in all
        emit_stream(store, f"s{n:02d}", 10)
        store.flush()
        if n == 0:
            assert [s.name for s in store.streams(ACCOUNT, GROUP)] == ["s00"]  # the flushes keep the index now
    left = sorted(s.name for s in store.streams(ACCOUNT, GROUP))
    assert 0 < len(left) < 60 and left == [f"s{n:02d}" for n in range(60 - len(left), 60)]  # the newest
    on_disk = group_bytes(tmp_path)
    assert on_disk <= 40_000 < on_disk + 2 * store.segment_bytes  # within the bound; no more went than needed
    assert len(segments(tmp_path)) <= 9
    kept, events = snapshot(store)
    assert {e.stream for e in events} == set(left) and all(e.message == "x" * 100 for e in events)
    assert snapshot(FileLogStore(tmp_path, group_max_bytes=40_000)) == (kept, events)  # same index from disk


def test_the_bound_counts_what_an_earlier_run_left(tmp_path: Path) -> None:
    first = FileLogStore(tmp_path, group_max_bytes=40_000)
    for n in range(30):
        emit_stream(first, f"old{n:02d}", 10)
        first.flush()
    again = FileLogStore(tmp_path, group_max_bytes=40_000)  # a restart: it lists what is there
    for n in range(10):
        emit_stream(again, f"new{n}", 10)
        again.flush()
    names = {s.name for s in again.streams(ACCOUNT, GROUP)}
    assert "old00" not in names and {f"new{n}" for n in range(10)} <= names
    assert group_bytes(tmp_path) <= 40_000


def test_positions_and_event_ids_survive_a_restart_and_the_bound(tmp_path: Path) -> None:
    store = FileLogStore(tmp_path, group_max_bytes=40_000)
    emit_stream(store, "keep", 5)
    store.flush()
    before = {e.position: e.event_id for e in store.events(ACCOUNT, GROUP, ["keep"])}
    positions = sorted(before)
    assert len(set(before.values())) == 5 and positions == [e.position for e in store.events(ACCOUNT, GROUP)]
    again = FileLogStore(tmp_path, group_max_bytes=40_000)
    emit_stream(again, "keep", 5)  # the same stream goes on, in this process's own segment
    for n in range(20):
        emit_stream(again, f"s{n}", 10)
        again.flush()
    after = list(again.events(ACCOUNT, GROUP, ["keep"]))
    survivors = [e for e in after if e.position in before]
    assert all(before[e.position] == e.event_id for e in survivors)
    assert [e.position for e in after] == sorted(e.position for e in after)  # increasing along the stream
    assert len(after) >= 5 and after[-1].position > positions[-1]


def test_a_line_cut_short_by_a_crash_is_skipped_and_never_continued(tmp_path: Path) -> None:
    store = FileLogStore(tmp_path)
    emit_stream(store, "s", 2)
    store.flush()
    (seg,) = segments(tmp_path)
    with open(seg, "ab") as fh:
        fh.write(b'1999 2000 s "half a li')  # no newline: the process died mid-write
    again = FileLogStore(tmp_path)
    assert [e.timestamp for e in again.events(ACCOUNT, GROUP)] == [1000, 1001]
    again.emit(ACCOUNT, GROUP, "s", 3000, "after")
    again.flush()
    assert len(segments(tmp_path)) == 2  # a fresh segment: the cut line stays cut
    assert [e.message for e in again.events(ACCOUNT, GROUP)][-1] == "after"
    assert [e.timestamp for e in FileLogStore(tmp_path).events(ACCOUNT, GROUP)] == [1000, 1001, 3000]


def test_per_stream_files_of_an_earlier_version_are_folded_in(tmp_path: Path) -> None:
    group_dir = tmp_path / ACCOUNT / GROUP_DIR
    group_dir.mkdir(parents=True)
    (group_dir / "2026%2F11%2F01%2F%5B%24LATEST%5Dabc.log").write_text('10 11 "one"\n20 21 "two"\n')
    (group_dir / "other.log").write_text('15 16 "three"\n')
    store = FileLogStore(tmp_path)
    got = [(e.stream, e.timestamp, e.ingestion_time, e.message) for e in store.events(ACCOUNT, GROUP)]
    assert got == [
        ("2026/11/01/[$LATEST]abc", 10, 11, "one"),
        ("2026/11/01/[$LATEST]abc", 20, 21, "two"),
        ("other", 15, 16, "three"),
    ]
    assert not list(group_dir.glob("*.log")) and len(segments(tmp_path)) == 1


def test_a_removed_group_starts_again(tmp_path: Path) -> None:
    store = FileLogStore(tmp_path)
    emit_stream(store, "s", 2)
    store.flush()
    store.delete_group(ACCOUNT, GROUP)
    assert not store.has_group(ACCOUNT, GROUP)
    emit_stream(store, "s", 1)
    store.flush()
    assert [e.message for e in store.events(ACCOUNT, GROUP)] == ["x" * 100]

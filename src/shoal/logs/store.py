"""Log storage in the data directory, buffered off the invoke path and bounded per log group.

Layout: ``<root>/<account>/<quoted group>/<seq>.seg``. A group's events are appended to its newest segment,
one line each: ``<timestamp ms> <ingestion ms> <quoted stream> <json string>``; a flush writes each stream's
lines together, so a stream is a list of *spans* (segment, offset, length). Segments, not streams, are files:
a burst of new environments (a stream each) appends to one file instead of creating one per stream, which on
ext4 without a journal cost ~0.3 ms of a worker thread per environment (it scans recently deleted inodes).

The invoke path only appends to an in-memory list (:meth:`emit`); :meth:`flush` (run by the server's flush
loop in a worker thread) writes, rolls to a new segment past ``group_max_bytes / SEGMENTS``, and keeps the
group within its bound by removing its oldest segments. A process writes to a fresh segment of each group
it touches, so a line a crash cut short is never continued. A group's index (streams, their spans and
first/last timestamps) is built by scanning its segments when first read, and kept up to date by flushes
after that. An event's position (segment and offset) is stable: GetLogEvents tokens and event ids use it.
Per-stream ``<stream>.log`` files of earlier versions are folded into a segment when their group is first
touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

SEGMENTS = 8  # a group's bound is kept to within one segment: 1/SEGMENTS of it
MIN_SEGMENT_BYTES = 4096
SUFFIX = ".seg"
OFFSET_BITS = 40  # a position is (segment << OFFSET_BITS) | offset


@dataclass(frozen=True, slots=True)
class LogEvent:
    stream: str
    timestamp: int  # ms
    ingestion_time: int  # ms
    message: str
    event_id: str
    position: int  # (segment << OFFSET_BITS) | offset: increases with each event of a stream, never reused


@dataclass(frozen=True, slots=True)
class StreamInfo:
    name: str
    creation_time: int
    first_event: int | None
    last_event: int | None
    last_ingestion: int | None
    stored_bytes: int


@dataclass(slots=True)
class _Stream:
    first: int
    last: int
    ingestion: int
    size: int = 0
    spans: list[tuple[int, int, int]] = field(default_factory=list)  # (segment, offset, length)

    def add(self, seq: int, offset: int, length: int, first: int, last: int, ingestion: int) -> None:
        self.first, self.last = min(self.first, first), max(self.last, last)
        self.ingestion = max(self.ingestion, ingestion)
        self.size += length
        if self.spans and self.spans[-1][0] == seq and sum(self.spans[-1][1:]) == offset:
            s = self.spans[-1]
            self.spans[-1] = (seq, s[1], s[2] + length)  # contiguous with the last span: one span
        else:
            self.spans.append((seq, offset, length))


@dataclass(slots=True)
class _Group:
    """What the store knows of one group's directory: its segments' sizes, and (once read) its index."""

    directory: Path
    segments: dict[int, int]  # seq → bytes
    current: int | None = None  # the segment this process appends to
    streams: dict[str, _Stream] | None = None  # built on the first read

    @property
    def size(self) -> int:
        return sum(self.segments.values())


class FileLogStore:
    def __init__(self, root: Path, *, group_max_bytes: int = 64 * 1024 * 1024) -> None:
        self.root = root
        self.group_max_bytes = group_max_bytes
        self.segment_bytes = max(MIN_SEGMENT_BYTES, group_max_bytes // SEGMENTS)
        self._pending: list[tuple[str, str, str, int, str]] = []  # account, group, stream, ts, message
        self._lock = threading.Lock()  # flush and reads run in worker threads
        self._groups: dict[Path, _Group] = {}
        root.mkdir(parents=True, exist_ok=True)

    # ---- write side -----------------------------------------------------------------------------------

    def emit(self, account: str, group: str, stream: str, timestamp_ms: int, message: str) -> None:
        """Buffer one event. No I/O: called on the invoke path."""
        self._pending.append((account, group, stream, timestamp_ms, message))

    def flush(self) -> int:
        """Write buffered events to disk; returns how many were written."""
        with self._lock:
            pending, self._pending = self._pending, []
            if not pending:
                return 0
            now = int(time.time() * 1000)
            by_group: dict[tuple[str, str], dict[str, list[tuple[int, str]]]] = {}
            for account, group, stream, ts, message in pending:
                by_group.setdefault((account, group), {}).setdefault(stream, []).append((ts, message))
            for (account, group), streams in by_group.items():
                self._write_group(self._group(account, group), streams, now)
            return len(pending)

    def _write_group(self, g: _Group, streams: dict[str, list[tuple[int, str]]], now: int) -> None:
        try:
            g.directory.mkdir(parents=True)
        except FileExistsError:
            pass
        else:  # a new group, or one removed behind the store's back: nothing of it is left
            g.segments.clear()
            g.current = None
            g.streams = {} if g.streams is not None else None
        if g.current is None or g.segments.get(g.current, 0) >= self.segment_bytes:
            g.current = max(g.segments, default=0) + 1
        seq = g.current
        chunks: list[bytes] = []
        spans: list[tuple[str, int, int, int, int]] = []  # stream, offset in this write, length, first, last
        written = 0
        for stream, events in streams.items():
            name = quote(stream, safe="")
            data = "".join(
                f"{ts} {now} {name} {json.dumps(message, ensure_ascii=False)}\n" for ts, message in events
            ).encode("utf-8")
            chunks.append(data)
            spans.append((stream, written, len(data), min(e[0] for e in events), max(e[0] for e in events)))
            written += len(data)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        fd = os.open(g.directory / f"{seq:010d}{SUFFIX}", flags, 0o644)
        try:
            start = os.fstat(fd).st_size  # this process is the segment's only writer
            os.write(fd, b"".join(chunks))
        finally:
            os.close(fd)
        g.segments[seq] = start + written
        if g.streams is not None:
            for stream, at, length, first, last in spans:
                entry = g.streams.get(stream)
                if entry is None:
                    entry = g.streams[stream] = _Stream(first, last, now)
                entry.add(seq, start + at, length, first, last, now)
        self._enforce_bound(g)

    def _enforce_bound(self, g: _Group) -> None:
        """Remove the group's oldest segments (never the one being written) while it is over its bound."""
        while g.size > self.group_max_bytes and len(g.segments) > 1:
            oldest = min(g.segments)
            (g.directory / f"{oldest:010d}{SUFFIX}").unlink(missing_ok=True)
            del g.segments[oldest]
            if g.streams is not None:
                for name in list(g.streams):
                    entry = g.streams[name]
                    kept = [s for s in entry.spans if s[0] != oldest]
                    if len(kept) != len(entry.spans):
                        if not kept:
                            del g.streams[name]
                            continue
                        entry.spans = kept
                        entry.size = sum(s[2] for s in kept)
                        self._recount(g, name, entry)

    def _recount(self, g: _Group, name: str, entry: _Stream) -> None:
        """A stream's first timestamp after its oldest events went with their segment."""
        events = list(self._read_spans(g, name, entry.spans))
        if events:
            entry.first = min(e.timestamp for e in events)

    def delete_group(self, account: str, group: str) -> None:
        with self._lock:
            directory = self._group_dir(account, group)
            self._groups.pop(directory, None)
            shutil.rmtree(directory, ignore_errors=True)

    # ---- the group table --------------------------------------------------------------------------------

    def _group_dir(self, account: str, group: str) -> Path:
        return self.root / account / quote(group, safe="")

    def _group(self, account: str, group: str) -> _Group:
        """The group's entry (call with the lock held); its segments are listed when first seen."""
        directory = self._group_dir(account, group)
        g = self._groups.get(directory)
        if g is None:
            _fold_legacy(directory)
            segments = {}
            if directory.is_dir():
                for path in directory.glob(f"*{SUFFIX}"):
                    if path.stem.isdigit():
                        segments[int(path.stem)] = path.stat().st_size
            g = self._groups[directory] = _Group(directory, segments)
        return g

    def _indexed(self, account: str, group: str) -> tuple[_Group, dict[str, _Stream]]:
        """The group and its stream index, built when first asked for (call with the lock held)."""
        g = self._group(account, group)
        if g.streams is None:
            g.streams = {}
            for seq in sorted(g.segments):
                self._scan(g, g.streams, seq)
        return g, g.streams

    def _scan(self, g: _Group, streams: dict[str, _Stream], seq: int) -> None:
        try:
            with open(g.directory / f"{seq:010d}{SUFFIX}", "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            g.segments.pop(seq, None)
            return
        offset = 0
        for raw in data.splitlines(keepends=True):
            parsed = _parse_head(raw)
            if parsed is not None:
                ts, ingestion, name = parsed
                entry = streams.get(name)
                if entry is None:
                    entry = streams[name] = _Stream(ts, ts, ingestion)
                entry.add(seq, offset, len(raw), ts, ts, ingestion)
            offset += len(raw)

    # ---- read side ------------------------------------------------------------------------------------

    def groups(self, account: str) -> list[tuple[str, int, int]]:
        """(name, creation ms, stored bytes) of each group of ``account``."""
        base = self.root / account
        if not base.is_dir():
            return []
        out = []
        for d in sorted(base.iterdir()):
            if d.is_dir():
                size = sum(p.stat().st_size for p in d.glob(f"*{SUFFIX}"))
                out.append((unquote(d.name), int(d.stat().st_ctime * 1000), size))
        return sorted(out)

    def has_group(self, account: str, group: str) -> bool:
        return self._group_dir(account, group).is_dir()

    def streams(self, account: str, group: str) -> list[StreamInfo]:
        if not self.has_group(account, group):
            return []
        with self._lock:
            _, index = self._indexed(account, group)
            return [StreamInfo(n, s.first, s.first, s.last, s.ingestion, s.size) for n, s in index.items()]

    def events(self, account: str, group: str, streams: list[str] | None = None) -> Iterator[LogEvent]:
        """Every stored event of the group (optionally some streams), in stream order then written order."""
        if not self.has_group(account, group):
            return
        with self._lock:
            g, index = self._indexed(account, group)
            names = sorted(index) if streams is None else streams
            chosen = [(name, list(index[name].spans)) for name in names if name in index]
        for name, spans in chosen:
            yield from self._read_spans(g, name, spans)

    def _read_spans(self, g: _Group, name: str, spans: list[tuple[int, int, int]]) -> Iterator[LogEvent]:
        digest = _stream_digest(unquote(g.directory.name), name)
        for seq, offset, length in spans:
            try:
                with open(g.directory / f"{seq:010d}{SUFFIX}", "rb") as fh:
                    fh.seek(offset)
                    data = fh.read(length)
            except FileNotFoundError:  # the segment went over the bound meanwhile
                continue
            at = offset
            for raw in data.splitlines(keepends=True):
                event = _parse_line(raw)
                if event is not None:
                    ts, ingestion, message = event
                    position = (seq << OFFSET_BITS) | at
                    yield LogEvent(name, ts, ingestion, message, f"{digest:015d}{position:020d}", position)
                at += len(raw)

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob(f"*{SUFFIX}"))


def _parse_head(raw: bytes) -> tuple[int, int, str] | None:
    """(timestamp, ingestion, stream) of a stored line; None for one a crash cut short."""
    if not raw.endswith(b"\n"):
        return None
    parts = raw.split(b" ", 3)
    if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1]), unquote(parts[2].decode("ascii", "replace"))


def _parse_line(raw: bytes) -> tuple[int, int, str] | None:
    """(timestamp, ingestion, message) of a stored line; None for one a crash cut short."""
    parts = raw.split(b" ", 3)
    if len(parts) != 4 or not raw.endswith(b"\n"):
        return None
    try:
        return int(parts[0]), int(parts[1]), json.loads(parts[3])
    except ValueError:
        return None


def _fold_legacy(directory: Path) -> None:
    """Fold an earlier version's per-stream ``<stream>.log`` files (``<ts> <ingestion> <json>`` lines) into
    one segment before this one, oldest file first, then remove them."""
    legacy = sorted(directory.glob("*.log"), key=lambda p: p.stat().st_mtime) if directory.is_dir() else []
    if not legacy:
        return
    lines = []
    for path in legacy:
        name = path.name[:-4]  # already quoted
        for raw in path.read_bytes().splitlines(keepends=True):
            parts = raw.split(b" ", 2)
            if len(parts) == 3 and raw.endswith(b"\n"):
                lines.append(b" ".join((parts[0], parts[1], name.encode("ascii"), parts[2])))
    target = directory / f"{0:010d}{SUFFIX}"
    if target.exists():  # folded before a crash cut the clean-up short: only the clean-up is left
        for path in legacy:
            path.unlink(missing_ok=True)
        return
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(b"".join(lines))
    os.replace(tmp, target)  # the folded segment is whole before any legacy file goes
    for path in legacy:
        path.unlink(missing_ok=True)


def _stream_digest(group: str, stream: str) -> int:
    """A stable number per (group, stream) (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(f"{group}\0{stream}".encode(), digest_size=6).digest(), "big")

"""Log storage in the data directory, buffered off the invoke path and bounded per log group.

Layout: ``<root>/<account>/<quoted group>/<quoted stream>.log``; each line is one log event as
``<timestamp ms> <ingestion ms> <json string>``. The invoke path only appends to an in-memory list
(:meth:`emit`); :meth:`flush` (run by the server's flush loop in a worker thread) writes to disk and enforces
the size bound by removing a group's oldest streams.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote


@dataclass(frozen=True, slots=True)
class LogEvent:
    stream: str
    timestamp: int  # ms
    ingestion_time: int  # ms
    message: str
    event_id: str


@dataclass(frozen=True, slots=True)
class StreamInfo:
    name: str
    creation_time: int
    first_event: int | None
    last_event: int | None
    last_ingestion: int | None
    stored_bytes: int


class FileLogStore:
    def __init__(self, root: Path, *, group_max_bytes: int = 64 * 1024 * 1024) -> None:
        self.root = root
        self.group_max_bytes = group_max_bytes
        self._pending: list[tuple[str, str, str, int, str]] = []  # account, group, stream, ts, message
        self._lock = threading.Lock()  # flush runs in a worker thread
        # bytes stored per group directory, counted once when this process first writes to it and kept up to
        # date after: a flush stats a group's files only when the group is over its bound
        self._group_bytes: dict[Path, int] = {}
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
            by_file: dict[tuple[str, str, str], list[str]] = {}
            for account, group, stream, ts, message in pending:
                line = f"{ts} {now} {json.dumps(message, ensure_ascii=False)}\n"
                by_file.setdefault((account, group, stream), []).append(line)
            touched_groups: set[Path] = set()
            for (account, group, stream), lines in by_file.items():
                group_dir = self._group_dir(account, group)
                data = "".join(lines).encode("utf-8")
                self._append(group_dir, quote(stream, safe="") + ".log", data)
                self._group_bytes[group_dir] += len(data)
                touched_groups.add(group_dir)
            for group_dir in touched_groups:
                if self._group_bytes[group_dir] > self.group_max_bytes:
                    self._group_bytes[group_dir] = self._enforce_bound(group_dir)
            return len(pending)

    def _append(self, group_dir: Path, name: str, data: bytes) -> None:
        if group_dir not in self._group_bytes:
            group_dir.mkdir(parents=True, exist_ok=True)
            self._group_bytes[group_dir] = sum(p.stat().st_size for p in group_dir.glob("*.log"))
        try:
            fh = open(group_dir / name, "ab")
        except FileNotFoundError:  # the group was removed meanwhile: it starts again, empty
            group_dir.mkdir(parents=True, exist_ok=True)
            self._group_bytes[group_dir] = 0
            fh = open(group_dir / name, "ab")
        with fh:
            fh.write(data)

    def _enforce_bound(self, group_dir: Path) -> int:
        """Remove the group's oldest streams until it is within its bound; returns the bytes left."""
        files = [(p.stat(), p) for p in group_dir.glob("*.log")]
        total = sum(st.st_size for st, _ in files)
        for st, path in sorted(files, key=lambda f: f[0].st_mtime):
            if total <= self.group_max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= st.st_size
        return total

    def delete_group(self, account: str, group: str) -> None:
        import shutil

        with self._lock:
            group_dir = self._group_dir(account, group)
            self._group_bytes.pop(group_dir, None)
            shutil.rmtree(group_dir, ignore_errors=True)

    # ---- read side ------------------------------------------------------------------------------------

    def _group_dir(self, account: str, group: str) -> Path:
        return self.root / account / quote(group, safe="")

    def groups(self, account: str) -> list[tuple[str, int, int]]:
        """(name, creation ms, stored bytes) of each group of ``account``."""
        base = self.root / account
        if not base.is_dir():
            return []
        out = []
        for d in sorted(base.iterdir()):
            if d.is_dir():
                size = sum(p.stat().st_size for p in d.glob("*.log"))
                out.append((unquote(d.name), int(d.stat().st_ctime * 1000), size))
        return sorted(out)

    def has_group(self, account: str, group: str) -> bool:
        return self._group_dir(account, group).is_dir()

    def streams(self, account: str, group: str) -> list[StreamInfo]:
        out: list[StreamInfo] = []
        group_dir = self._group_dir(account, group)
        if not group_dir.is_dir():
            return out
        for path in group_dir.glob("*.log"):
            first = last = ingest = None
            for ts, ing, _ in self._read_lines(path):
                first = ts if first is None else first
                last, ingest = ts, ing
            st = path.stat()
            out.append(
                StreamInfo(
                    unquote(path.name[:-4]), first or int(st.st_ctime * 1000), first, last, ingest, st.st_size
                )
            )
        return out

    def events(self, account: str, group: str, streams: list[str] | None = None) -> Iterator[LogEvent]:
        """Every stored event of the group (optionally some streams), in stream order then file order."""
        group_dir = self._group_dir(account, group)
        if not group_dir.is_dir():
            return
        names = (
            streams if streams is not None else sorted(unquote(p.name[:-4]) for p in group_dir.glob("*.log"))
        )
        for name in names:
            path = group_dir / (quote(name, safe="") + ".log")
            if path.is_file():
                for n, (ts, ing, message) in enumerate(self._read_lines(path)):
                    yield LogEvent(name, ts, ing, message, stable_event_id(group, name, n))

    @staticmethod
    def _read_lines(path: Path) -> Iterator[tuple[int, int, str]]:
        try:
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    ts, ing, payload = line.split(" ", 2)
                    yield int(ts), int(ing), json.loads(payload)
        except (OSError, ValueError):
            return

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*.log"))


def stable_event_id(group: str, stream: str, index: int) -> str:
    """A deterministic event id (``hash()`` is salted per process, so ids use a stable digest)."""
    import hashlib

    digest = int.from_bytes(hashlib.blake2b(f"{group}\0{stream}".encode(), digest_size=6).digest(), "big")
    return f"{digest:015d}{index:010d}"

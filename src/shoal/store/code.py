"""Content-addressed storage of code packages in the data directory (the embedded backend).

Layout under ``root`` (``<data-dir>/code``)::

    zips/<sha256_hex>.zip     the package as uploaded, written atomically (tmp + fsync + rename)
    tree/<sha256_hex>/        the package extracted on first use, read-only, renamed into place atomically

The zip is the source of truth; a tree is a cache that :meth:`FileCodeStore.task_root` rebuilds when missing.
Every SHA-256 argument must be 64 lowercase hex digits: a caller-supplied string never builds a path.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import threading
from pathlib import Path

from shoal.store.packages import (
    MAX_UNZIPPED,
    PackageInfo,
    extract_package,
    inspect_package,
    remove_stale_leftovers,
    remove_tree,
)

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _checked(sha256_hex: str) -> str:
    if not isinstance(sha256_hex, str) or not _SHA256_HEX.fullmatch(sha256_hex):
        raise ValueError(f"not a SHA-256 in lowercase hex: {sha256_hex!r}")
    return sha256_hex


class FileCodeStore:
    """Code packages as files, keyed by the zip's SHA-256. Thread-safe; process-safe by atomic renames."""

    def __init__(self, root: Path, *, max_unzipped: int = MAX_UNZIPPED) -> None:
        self.root = Path(root)
        self.max_unzipped = max_unzipped
        self._zips = self.root / "zips"
        self._trees = self.root / "tree"
        self._zips.mkdir(parents=True, exist_ok=True)
        self._trees.mkdir(parents=True, exist_ok=True)
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._remove_stale_leftovers()

    # ------------------------------------------------------------------------------------------ zips

    def put(self, data: bytes) -> PackageInfo:
        """Validate (structure, names, links, declared sizes) and store a package; idempotent."""
        info = inspect_package(data, max_unzipped=self.max_unzipped)
        path = self._zip(info.sha256_hex)
        if path.is_file():
            return info
        fd, tmp = tempfile.mkstemp(prefix=f".{info.sha256_hex}.", suffix=".tmp", dir=self._zips)
        try:
            with open(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)  # a concurrent put of the same bytes writes the same content: either wins
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self._zips)
        return info

    def has(self, sha256_hex: str) -> bool:
        return self._zip(sha256_hex).is_file()

    def zip_path(self, sha256_hex: str) -> Path:
        """The stored zip's path; ``KeyError`` if there is none."""
        path = self._zip(sha256_hex)
        if not path.is_file():
            raise KeyError(sha256_hex)
        return path

    def read(self, sha256_hex: str) -> bytes:
        try:
            return self._zip(sha256_hex).read_bytes()
        except FileNotFoundError:
            raise KeyError(sha256_hex) from None

    def total_size(self) -> int:
        """Bytes of stored zips (``AccountUsage.TotalCodeSize``)."""
        total = 0
        with os.scandir(self._zips) as it:
            for entry in it:
                if entry.name.endswith(".zip") and _SHA256_HEX.fullmatch(entry.name[:-4]):
                    try:
                        total += entry.stat(follow_symlinks=False).st_size
                    except FileNotFoundError:  # deleted meanwhile
                        pass
        return total

    # ------------------------------------------------------------------------------------------ trees

    def task_root(self, sha256_hex: str) -> Path:
        """The extracted, read-only tree of a stored package, extracting it on first use.

        ``KeyError`` if the package is not stored; ``InvalidParameterValueException`` if it cannot be
        extracted (e.g. its entries lied about their sizes). Concurrent callers in this process wait for one
        extraction; other processes race harmlessly (the loser's staging tree is discarded).
        """
        tree = self._tree(sha256_hex)
        if tree.is_dir():
            return tree
        with self._lock_for(sha256_hex):
            if not tree.is_dir():
                extract_package(
                    self.zip_path(sha256_hex), tree, max_unzipped=self.max_unzipped, read_only=True
                )
        return tree

    def delete(self, sha256_hex: str) -> None:
        """Remove the zip and its tree (when no function references the code any more). Missing is fine."""
        zip_path, tree = self._zip(sha256_hex), self._tree(sha256_hex)
        with self._lock_for(sha256_hex):
            zip_path.unlink(missing_ok=True)
            if not tree.exists():
                return
            # Move the tree out of the way first (same parent: a read-only directory can be renamed there),
            # so nobody finds a half-deleted tree under the real name.
            trash = self._trees / f".{sha256_hex}.{secrets.token_hex(8)}.trash"
            try:
                os.rename(tree, trash)
            except FileNotFoundError:  # another process deleted it meanwhile
                return
            remove_tree(trash)

    # ------------------------------------------------------------------------------------------ internals

    def _zip(self, sha256_hex: str) -> Path:
        return self._zips / f"{_checked(sha256_hex)}.zip"

    def _tree(self, sha256_hex: str) -> Path:
        return self._trees / _checked(sha256_hex)

    def _lock_for(self, sha256_hex: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(sha256_hex, threading.Lock())

    def _remove_stale_leftovers(self) -> None:
        """Remove temporary zips, staging and trash trees a crashed writer left behind (dot-names only)."""
        for directory in (self._zips, self._trees):
            remove_stale_leftovers(directory)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

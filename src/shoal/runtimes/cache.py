"""Where runtimes keep what they build once per host (compiled bootstraps, assemblies)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def cache_root(name: str) -> Path:
    """The first writable of $XDG_CACHE_HOME/shoal/<name>, ~/.cache/shoal/<name> and a per-user directory in
    the system temp dir (the package directory may be read-only). Raises OSError when none is writable."""
    candidates = []
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        candidates.append(Path(xdg) / "shoal" / name)
    candidates.append(Path.home() / ".cache" / "shoal" / name)
    candidates.append(Path(tempfile.gettempdir()) / f"shoal-{os.getuid()}" / name)
    for candidate in candidates:
        try:
            candidate.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    raise OSError(f"no writable cache directory for {name} among {candidates}")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created when missing): one builder per artefact at a time."""
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)

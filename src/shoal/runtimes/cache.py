"""Where runtimes keep what they build once per host (compiled bootstraps, assemblies)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

BUILD_TIMEOUT = 300  # seconds one build step (a compiler, a training run) may take


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


def build_step(argv: list[str], what: str, env: Mapping[str, str], cwd: Path | None = None) -> str:
    """Run one build step; its standard output. A failure raises RuntimeError naming ``what``, with the tail
    of what the step printed."""
    out = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
        env=dict(env),
        cwd=str(cwd) if cwd else None,
        stdin=subprocess.DEVNULL,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{what} failed ({out.returncode}): {(out.stdout + out.stderr)[-4000:]}")
    return out.stdout


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created when missing): one builder per artefact at a time."""
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)

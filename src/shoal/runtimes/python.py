"""The Python runtime family: python3.9 … python3.13 on the interpreters this host has."""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from shoal.runtimes.registry import Runtime

log = logging.getLogger(__name__)

BOOTSTRAP_DIR = Path(__file__).parent / "bootstraps" / "python"
SUPPORTED = ("3.9", "3.10", "3.11", "3.12", "3.13")


def _candidates(minor: str) -> Iterable[str]:
    name = f"python{minor}"
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory:
            yield os.path.join(directory, name)
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    yield from sorted(
        glob.glob(os.path.join(pyenv_root, "versions", f"{minor}.*", "bin", name)), reverse=True
    )
    yield from (f"/usr/local/bin/{name}", f"/usr/bin/{name}")


def _is_script(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"#!"


def _probe(path: str) -> tuple[str, str] | None:
    """(real executable, full version) of an interpreter, or None when it does not run."""
    try:
        out = subprocess.run(
            [path, "-I", "-S", "-c", "import sys; print(sys.executable); print(sys.version.split()[0])"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2:
        return None
    return os.path.realpath(lines[0]), lines[1]


def resolve(path: str, minor: str | None = None) -> tuple[str, str] | None:
    """Resolve ``path`` to the real interpreter binary (a shell shim such as pyenv's costs ~55 ms a start)."""
    path = shutil.which(path) or path
    if not os.path.isfile(path) or not os.access(path, os.X_OK) or _is_script(path):
        return None
    found = _probe(os.path.realpath(path))
    if found is None or (minor is not None and not found[1].startswith(minor + ".")):
        return None
    return found


class PythonFamily:
    name = "python"

    def discover(self, configured: Mapping[str, str]) -> dict[str, Runtime]:
        runtimes: dict[str, Runtime] = {}
        for minor in SUPPORTED:
            runtime_id = f"python{minor}"
            if runtime_id in configured:
                found = resolve(configured[runtime_id], minor)
                if found is None:
                    log.warning(
                        "runtimes setting: %s=%s is not a Python %s interpreter; ignored",
                        runtime_id,
                        configured[runtime_id],
                        minor,
                    )
                    continue
            else:
                found = next(
                    filter(None, (resolve(c, minor) for c in _candidates(minor) if os.path.exists(c))), None
                )
            if found is not None:
                runtime = self.runtime(runtime_id, *found)
                runtimes[runtime_id] = precompiled(runtime) or runtime
        return runtimes

    @staticmethod
    def runtime(runtime_id: str, executable: str, version: str) -> Runtime:
        if not re.fullmatch(r"python3\.\d+", runtime_id):
            raise ValueError(runtime_id)
        return Runtime(
            id=runtime_id,
            family="python",
            executable=executable,
            version=version,
            bootstrap_dir=BOOTSTRAP_DIR,
            bootstrap_argv=("-I", "-S", "{runtime_dir}/bootstrap.py"),
            host_paths=(_prefix(executable),),
            preload=BOOTSTRAP_DIR / "bootstrap.py",
        )


def _prefix(executable: str) -> Path:
    """The installation prefix of an interpreter (``…/bin/python3.12`` → ``…``)."""
    return Path(executable).resolve().parent.parent


FAMILY = PythonFamily()


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "shoal" / "bootstraps"


def precompiled(runtime: Runtime) -> Runtime | None:
    """The runtime started from a ``.pyc`` of the bootstrap compiled by its own interpreter.

    Python compiles a ``__main__`` script on every start (~7 ms for the bootstrap here) but runs a ``.pyc``
    directly. Compiled once per interpreter and bootstrap version, at discovery, into a cache directory that
    the sandbox binds at ``/var/runtime``. None (use the source) when compiling is not possible.
    """
    source = BOOTSTRAP_DIR / "bootstrap.py"
    digest = hashlib.sha256(source.read_bytes() + runtime.executable.encode() + runtime.version.encode())
    target = cache_dir() / f"{runtime.id}-{digest.hexdigest()[:16]}"
    pyc = target / "bootstrap.pyc"
    if not pyc.exists():
        try:
            target.mkdir(parents=True, exist_ok=True)
            tmp = target / f".bootstrap.{os.getpid()}.pyc"
            subprocess.run(
                [
                    runtime.executable,
                    "-I",
                    "-S",
                    "-c",
                    "import py_compile, sys; "
                    "py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)",
                    str(source),
                    str(tmp),
                ],
                check=True,
                capture_output=True,
                timeout=30,
            )
            os.chmod(tmp, 0o644)
            os.replace(tmp, pyc)
            os.chmod(target, 0o755)
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning(
                "could not precompile the Python bootstrap for %s (%s); starting it from source",
                runtime.id,
                exc,
            )
            return None
    return dataclasses.replace(
        runtime, bootstrap_dir=target, bootstrap_argv=("-I", "-S", "{runtime_dir}/bootstrap.pyc")
    )

"""The custom runtime family: ``provided``, ``provided.al2``, ``provided.al2023`` (spec §4.2).

The program is the function's own executable ``bootstrap``: ``/var/task/bootstrap``, else ``/opt/bootstrap``
(a layer). It talks to the Runtime API itself (a Go or Rust binary, a shell script, an official runtime
interface client …); Shoal adds no bootstrap of its own, sets no ``AWS_EXECUTION_ENV`` and passes the Handler
only as ``_HANDLER``. These runtime ids need no interpreter, so every host offers them.

Choosing the bootstrap follows Lambda: the first candidate that exists and is not a directory is *the*
bootstrap, even when it cannot run (there is no fall-back to ``/opt/bootstrap`` then). A bootstrap that
cannot be executed fails INIT with ``Runtime.InvalidEntrypoint`` on AWS ("fork/exec /var/task/bootstrap:
permission denied", "… no such file or directory" for a missing ``#!`` interpreter, "… exec format error"
for a file that is neither a script nor a program). :func:`exec_problem` predicts those from the host side
so that such a function never starts a process; the entrypoint hook then answers None, which the environment
reports as ``Runtime.InvalidEntrypoint``.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shoal.runtimes.registry import Runtime

log = logging.getLogger(__name__)

# Runtime id → the Amazon Linux generation it names, as on the INIT_START line (``provided:al2023.v1``).
IDS = {"provided": "al1", "provided.al2": "al2", "provided.al2023": "al2023"}
RUNTIME_REVISION = "1"  # the ``vN`` of ``provided:al2023.vN``: Shoal's custom runtime has one revision
# /var/runtime holds nothing a custom runtime uses; bind a directory that ships with every install.
BOOTSTRAP_DIR = Path(__file__).parent / "bootstraps"
SANDBOX_TASK_ROOT = "/var/task"
SANDBOX_OPT = "/opt"
_MAX_LINKS = 40  # as the kernel's symlink limit
_SHEBANG_MAX = 256  # BINPRM_BUF_SIZE: the kernel reads no more of a "#!" line
_ELF_MAGIC = b"\x7fELF"


@dataclass(frozen=True, slots=True)
class CustomRuntime(Runtime):
    """A ``provided*`` runtime: ``version`` is the Amazon Linux generation plus revision (``al2023.v1``)."""

    @property
    def runtime_version(self) -> str:
        return f"provided:{self.version}"


class _Places:
    """Maps the sandbox paths a bootstrap may name to host paths, to look at them from the server."""

    def __init__(self, task_root: Path, opt: Path | None) -> None:
        self.task_root = task_root
        self.opt = opt

    def host(self, sandbox_path: str, cwd: Path) -> Path:
        if not sandbox_path.startswith("/"):
            return cwd / sandbox_path
        for inside, host in ((SANDBOX_TASK_ROOT, self.task_root), (SANDBOX_OPT, self.opt)):
            if host is not None and (sandbox_path == inside or sandbox_path.startswith(inside + "/")):
                return host / sandbox_path[len(inside) :].lstrip("/")
        return Path(sandbox_path)

    def resolve(self, path: Path) -> Path | None:
        """Follow symbolic links as the sandbox would (absolute targets under /var/task or /opt are the
        function's); None when the chain is broken or too long."""
        for _ in range(_MAX_LINKS):
            try:
                if not path.is_symlink():
                    return path if path.exists() else None
                target = os.readlink(path)
            except OSError:
                return None
            path = self.host(target, path.parent)
        return None


def _interpreter(head: bytes) -> str | None:
    """The interpreter of a ``#!`` line as the kernel reads it (a trailing CR stays part of the name)."""
    line = head[2:_SHEBANG_MAX].split(b"\n", 1)[0]
    name = line.lstrip(b" \t").split(b" ", 1)[0].split(b"\t", 1)[0]
    return name.decode("utf-8", "surrogateescape") if name else None


def exec_problem(path: Path, places: _Places, depth: int = 0) -> int | None:
    """The errno ``execve`` would fail with for the (already resolved) host file ``path``, or None when it
    would start. Conservative: only what is certain from the file itself is reported."""
    try:
        st = path.stat()
    except OSError:
        return errno.ENOENT
    if stat.S_ISDIR(st.st_mode) or not stat.S_ISREG(st.st_mode) or not os.access(path, os.X_OK):
        return errno.EACCES
    try:
        with path.open("rb") as fh:
            head = fh.read(_SHEBANG_MAX)
    except OSError:
        return errno.EACCES
    if head.startswith(_ELF_MAGIC):
        return None  # architecture, loader and libraries are the kernel's to judge
    if not head.startswith(b"#!"):
        return errno.ENOEXEC
    name = _interpreter(head)
    if name is None:
        return errno.ENOEXEC
    if depth >= 4:  # deeper nesting is the kernel's to judge
        return None
    interpreter = places.resolve(places.host(name, places.task_root))
    if interpreter is None:
        return errno.ENOENT
    return exec_problem(interpreter, places, depth + 1)


def _choose(task_root: Path, opt: Path | None) -> tuple[int, int | None] | None:
    """(index of the chosen candidate, errno its exec would fail with or None), or None when no candidate
    exists. Lambda skips a candidate that does not exist or is a directory, and takes the first other one."""
    places = _Places(task_root, opt)
    hosts = [task_root / "bootstrap"] + ([opt / "bootstrap"] if opt is not None else [])
    for index, host in enumerate(hosts):
        resolved = places.resolve(host)
        if resolved is not None and not resolved.is_dir():
            return index, exec_problem(resolved, places)
    return None


def find_bootstrap(task_root: Path, opt: Path | None) -> str | None:
    """The ``Runtime.entrypoint`` hook: the sandbox path of the function's bootstrap, or None when there is
    none or it cannot be executed (both are ``Runtime.InvalidEntrypoint``)."""
    chosen = _choose(task_root, opt)
    if chosen is None or chosen[1] is not None:
        return None
    return ("{task_root}/bootstrap", "{opt}/bootstrap")[chosen[0]]


def describe_problem(task_root: Path, opt: Path | None, sandbox_task_root: str = SANDBOX_TASK_ROOT) -> str:
    """AWS's reason for a bootstrap :func:`find_bootstrap` refuses, e.g. ``fork/exec /var/task/bootstrap:
    permission denied`` (Go's wording: the strerror text with a lower-case first letter); "" when it runs."""
    chosen = _choose(task_root, opt)
    if chosen is None:
        return f"Couldn't find valid bootstrap(s): [{sandbox_task_root}/bootstrap {SANDBOX_OPT}/bootstrap]"
    index, problem = chosen
    if problem is None:
        return ""
    text = os.strerror(problem)
    path = (f"{sandbox_task_root}/bootstrap", f"{SANDBOX_OPT}/bootstrap")[index]
    return f"fork/exec {path}: {text[:1].lower()}{text[1:]}"


class CustomFamily:
    name = "provided"

    def discover(self, configured: Mapping[str, str]) -> dict[str, Runtime]:
        for runtime_id in IDS:
            if runtime_id in configured:
                log.warning(
                    "runtimes setting: %s needs no interpreter (the function ships its own bootstrap); "
                    "%s ignored",
                    runtime_id,
                    configured[runtime_id],
                )
        return {runtime_id: self.runtime(runtime_id) for runtime_id in IDS}

    @staticmethod
    def runtime(runtime_id: str) -> Runtime:
        generation = IDS[runtime_id]
        return CustomRuntime(
            id=runtime_id,
            family="provided",
            executable="{task_root}/bootstrap",  # placeholder: the hook names the real program
            version=f"{generation}.v{RUNTIME_REVISION}",
            bootstrap_dir=BOOTSTRAP_DIR,
            bootstrap_argv=(),
            host_paths=(),
            entrypoint=find_bootstrap,
            managed=False,
        )


FAMILY = CustomFamily()

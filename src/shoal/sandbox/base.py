"""The sandbox backend protocol and the spawned-process handle shared by every backend."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar


@dataclass(frozen=True, slots=True)
class Standby:
    """A generic runtime process that a backend may start ahead of need and then specialise with one
    function's code and environment. It is the same for every function of its runtime (nothing in it is the
    function's), so any ready one can become any such environment.

    The process is started with ``env``, in the task root (empty until then), with a pipe to read on
    descriptor 3 and one to write on descriptor 4. It writes ``R`` on 4 once ready (and keeps 4 open while
    it lives), then reads from 3, up to end-of-file, ``{"env": {...}, "cwd": "..."}`` as JSON: its
    environment and working directory from then on. The function's directories are in place before that
    message is sent.
    """

    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """Everything a backend needs to start one execution environment's process tree."""

    env_id: str
    argv: list[str]
    env: dict[str, str]
    code_dir: Path  # host path of the unpacked code; the function sees it as its task root
    work_dir: Path  # host scratch directory owned by this environment (removed on destroy)
    memory_mb: int = 128
    ephemeral_mb: int = 512
    extra_ro_binds: tuple[tuple[Path, str], ...] = field(default=())  # (host path, path inside)
    uid: int | None = None  # the environment's own uid (namespace backend), from ``new_identity``
    # (interpreter, bootstrap source): a backend with a fork-server may start the runtime from a process of
    # that interpreter which has already imported the bootstrap, instead of exec'ing ``argv``
    preload: tuple[str, str] | None = None
    # external extensions (paths as the backend executes them): started in the sandbox before the runtime,
    # with the runtime's environment, uid and output
    extensions: tuple[str, ...] = ()
    # a pre-started runtime the backend may specialise instead of starting ``argv`` (None: always ``argv``)
    standby: Standby | None = None
    # told the uid the runtime will really run as, before it can run, when the backend gives the environment
    # another identity than ``uid`` (a pre-started runtime already has one)
    admit: Callable[[int], None] | None = None


class Adoption(Protocol):
    """How a copy forked from a snapshot's runtime becomes an environment of its own (``sandbox/forks.py``):
    the copy connects to ``name`` (an abstract Unix socket) and :meth:`adopt` isolates it."""

    name: str

    async def adopt(self, *, parent_uid: int, uid: int, memory_mb: int, work_dir: Path) -> SandboxProcess: ...

    async def deliver(self, variables: bytes) -> None:
        """The adopted copy's environment variables (JSON): it runs from then on."""

    def close(self) -> None:
        """Let go of a copy that got no variables (it exits)."""


class SandboxBackend(Protocol):
    name: str
    isolates: bool  # False: functions are not isolated from each other or the host

    def task_root(self, spec: SandboxSpec) -> str:
        """The path the function sees its code at (``LAMBDA_TASK_ROOT``)."""

    def sandbox_path(self, spec: SandboxSpec, host_path: Path, inside: str) -> str:
        """The path at which a host file bound with ``extra_ro_binds`` is seen inside the sandbox."""

    def new_identity(self) -> int | None:
        """A uid for a new environment (None: the backend does not give environments their own uid)."""

    def runtime_api_address(self) -> str | None:
        """A fixed Runtime API address when environments get a private network (the listener then arrives
        as ``SandboxProcess.listener``); None when the server listens on the host's loopback."""

    def prepare(self, slots: int) -> None:
        """Start-up work (a worker thread): clean what a crashed run left, pre-create resources."""

    async def start(self, spec: SandboxSpec) -> SandboxProcess: ...

    def fork_adoption(self) -> Adoption | None:
        """A way in for one copy forked from a snapshot's runtime; None where the backend cannot isolate
        such copies (SnapStart versions then run INIT in each environment)."""

    def cleanup_stale(self, root: Path) -> None:
        """Remove what a previous, crashed server run left behind under ``root``."""


class SandboxProcess:
    """A started process tree: its combined stdout/stderr pipe, its exit, and its end.

    The process is a session leader, so :meth:`kill` reaches every process it started that did not leave
    its session (the namespace backend's PID namespace closes that gap).
    """

    def __init__(self, pid: int, output_fd: int, work_dir: Path) -> None:
        self.pid = pid
        self.output_fd = output_fd
        self.work_dir = work_dir
        self._returncode: int | None = None
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int] = loop.create_future()
        self._pidfd = os.pidfd_open(pid)
        loop.add_reader(self._pidfd, self._on_exit)

    @property
    def returncode(self) -> int | None:
        return self._returncode

    def _on_exit(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            status = None  # not our child (no subreaper): it ended, its status is unknowable
        else:
            if pid == 0:
                return
        self._returncode = self._exit_code(status) if status is not None else -9
        asyncio.get_running_loop().remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        if not self.exited.done():
            self.exited.set_result(self._returncode)

    uid: int | None = None
    listener: socket.socket | None = None

    def _exit_code(self, status: int) -> int:
        """The runtime's exit code (negative: the signal that ended it) from the wait status of ``pid``."""
        return os.waitstatus_to_exitcode(status)

    def runtime_pid(self) -> int:
        """The runtime's own process (``pid`` unless an init process runs before it)."""
        return self.pid

    def freeze(self) -> None:
        """Stop the environment's processes while it is idle (no CPU between invocations)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGCONT)

    async def after_init(self) -> None:
        """Called once INIT has finished (e.g. to apply the CPU quota)."""

    def settled(self) -> None:
        """Called once the environment's start is over: its first invocation was answered (or, for one made
        ahead of invocations, its INIT is done). Work kept off a start's path, such as preparing the next
        environment, may begin."""

    async def become_snapshot(self) -> None:
        """Called instead of :meth:`after_init` for a SnapStart snapshot, which copies are forked from: a copy
        begins in the snapshot's cgroup and what it touches there stays charged to it, so once its INIT
        (under the function's limits) is done the snapshot gets no CPU quota and a memory limit with room
        for its live copies' share."""

    def oom_killed(self) -> bool:
        """Whether the environment was killed for exceeding its memory (needs a memory cgroup)."""
        return False

    def kill(self) -> None:
        if self._returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def helpers_alive(self) -> bool:
        """Whether a direct child of the runtime (an extension, or a process the runtime started) still runs:
        what a SHUTDOWN waits on."""
        me = str(self.runtime_pid())
        try:
            entries = os.listdir("/proc")
        except OSError:
            return False
        for entry in entries:
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if len(fields) > 1 and fields[1].decode() == me and fields[0] != b"Z":
                return True
        return False

    def peak_memory_mb(self) -> int:
        """Peak resident memory of the runtime process, in MB (``Max Memory Used``)."""
        try:
            with open(f"/proc/{self.pid}/status", "rb") as fh:
                for line in fh:
                    if line.startswith(b"VmHWM:"):
                        return max(1, int(line.split()[1]) // 1024)
        except (OSError, ValueError, IndexError):
            pass
        return 0

    async def destroy(self, grace: float = 0.0) -> None:
        """End the process tree (SIGTERM, ``grace`` seconds, SIGKILL) and wait for it."""
        if self._returncode is None and grace > 0:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.exited), grace)
        self.kill()
        await self.exited


P = TypeVar("P", bound="SandboxProcess")


def spawn(
    argv: list[str],
    env: dict[str, str],
    cwd: str,
    work_dir: Path,
    pass_fds: tuple[int, ...] = (),
    cls: type[P] | None = None,
) -> P:
    """Start ``argv`` in a new session, stdout and stderr on one pipe, stdin from /dev/null.

    ``subprocess`` uses vfork+exec here (no preexec hook), which stays cheap however large the server is.
    Reaping is ours (through a pidfd), not the ``Popen`` object's.
    """
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=write_fd,
            stderr=write_fd,
            start_new_session=True,
            close_fds=True,
            pass_fds=pass_fds,
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    proc.returncode = 0  # ownership passes to SandboxProcess: keep Popen from waiting or warning
    os.set_blocking(read_fd, False)
    return (cls or SandboxProcess)(proc.pid, read_fd, work_dir)  # type: ignore[return-value]

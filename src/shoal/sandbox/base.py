"""The sandbox backend protocol and the spawned-process handle shared by every backend."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


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
    extra_ro_binds: tuple[tuple[Path, str], ...] = field(
        default=()
    )  # (host path, sandbox path), e.g. bootstraps


class SandboxBackend(Protocol):
    name: str
    isolates: bool  # False: functions are not isolated from each other or the host

    def task_root(self, spec: SandboxSpec) -> str:
        """The path the function sees its code at (``LAMBDA_TASK_ROOT``)."""

    def sandbox_path(self, spec: SandboxSpec, host_path: Path, inside: str) -> str:
        """The path at which a host file bound with ``extra_ro_binds`` is seen inside the sandbox."""

    async def start(self, spec: SandboxSpec) -> SandboxProcess: ...

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
        with contextlib.suppress(ChildProcessError):
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == 0:
                return
            self._returncode = os.waitstatus_to_exitcode(status)
        asyncio.get_running_loop().remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        if not self.exited.done():
            self.exited.set_result(self._returncode if self._returncode is not None else -9)

    def kill(self) -> None:
        if self._returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

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


def spawn(argv: list[str], env: dict[str, str], cwd: str, work_dir: Path) -> SandboxProcess:
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
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    proc.returncode = 0  # ownership passes to SandboxProcess: keep Popen from waiting or warning
    os.set_blocking(read_fd, False)
    return SandboxProcess(proc.pid, read_fd, work_dir)

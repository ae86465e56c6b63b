"""The process backend: no privileges needed, and no isolation (rlimits only).

Each environment gets its own working directory and ``TMPDIR``, and runs in its own session so that its
whole process group can be killed, but it runs as the server's user, sees the host's filesystem (``/tmp``
included) and can signal other processes of that user. The server says so loudly at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
from pathlib import Path

from shoal.sandbox.base import SandboxProcess, SandboxSpec, spawn


class _ProcessTree(SandboxProcess):
    """A process-backend environment. Killing its session misses daemons that called ``setsid``; at the
    end they are found by this environment's unique ``AWS_LAMBDA_RUNTIME_API`` in their environment
    (best effort: a process that rewrote its environment escapes — this backend does not isolate)."""

    marker = b""

    async def destroy(self, grace: float = 0.0) -> None:
        await super().destroy(grace)
        if self.marker:
            await asyncio.to_thread(_kill_marked, self.marker)


ADDRESS_SPACE_HEADROOM_MB = 16 * 1024
CPU_SECONDS = 3600  # per environment over its life (SIGXCPU, then the pool replaces it)
MAX_FILES = 1024
MAX_PROCESSES = 4096  # per user: the environments share the server's uid here


def _apply_rlimits(pid: int, spec: SandboxSpec) -> None:
    """Bound what one environment may take: address space, CPU time, files, processes, core dumps.

    Applied right after the start (``prlimit``), without a pre-exec hook, so the spawn stays a vfork. Best
    effort, like everything in this backend: the JVM and V8 reserve gigabytes of address space they never
    touch, so the address-space bound is MemorySize plus 16 GiB, a guard against runaway allocation rather
    than a memory limit (that takes the namespace backend's cgroup)."""
    address_space = (spec.memory_mb + ADDRESS_SPACE_HEADROOM_MB) * 1024 * 1024
    # CPU time: an environment that burns an hour is ended (SIGXCPU) and replaced
    with contextlib.suppress(OSError, ValueError):
        resource.prlimit(pid, resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS + 60))
    for limit, value in (
        (resource.RLIMIT_AS, address_space),
        (resource.RLIMIT_NOFILE, MAX_FILES),
        (resource.RLIMIT_NPROC, MAX_PROCESSES),
        (resource.RLIMIT_CORE, 0),
    ):
        with contextlib.suppress(OSError, ValueError):
            resource.prlimit(pid, limit, (value, value))


def _kill_marked(marker: bytes) -> None:
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)


# $1: how many extensions follow; each is started in the background, then the shell execs the runtime
_START_EXTENSIONS = 'n=$1; shift; while [ "$n" -gt 0 ]; do "$1" & shift; n=$((n - 1)); done; exec "$@"'


class ProcessBackend:
    name = "process"
    isolates = False

    def new_identity(self) -> int | None:
        return None

    def runtime_api_address(self) -> str | None:
        return None

    def prepare(self, slots: int) -> None:
        pass

    def task_root(self, spec: SandboxSpec) -> str:
        return str(spec.code_dir)

    def sandbox_path(self, spec: SandboxSpec, host_path: Path, inside: str) -> str:
        return str(host_path)

    async def start(self, spec: SandboxSpec) -> SandboxProcess:
        tmp = spec.work_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env = {**spec.env, "TMPDIR": str(tmp)}
        argv = spec.argv
        if spec.extensions:  # started first, by a shell that then becomes the runtime: one session
            argv = [
                "/bin/sh",
                "-c",
                _START_EXTENSIONS,
                "sh",
                str(len(spec.extensions)),
                *spec.extensions,
                *argv,
            ]
        tree = spawn(argv, env, str(spec.code_dir), spec.work_dir, cls=_ProcessTree)
        _apply_rlimits(tree.pid, spec)
        api = spec.env.get("AWS_LAMBDA_RUNTIME_API")
        tree.marker = f"AWS_LAMBDA_RUNTIME_API={api}".encode() if api else b""
        return tree

    def fork_adoption(self) -> None:
        return None  # nothing to isolate a copy with

    def cleanup_stale(self, root: Path) -> None:
        shutil.rmtree(root, ignore_errors=True)

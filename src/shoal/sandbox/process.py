"""The process backend: no privileges needed, and no isolation.

Each environment gets its own working directory and ``TMPDIR``, and runs in its own session so that its
whole process group can be killed, but it runs as the server's user, sees the host's filesystem (``/tmp``
included) and can signal other processes of that user. The server says so loudly at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
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
        tree = spawn(spec.argv, env, str(spec.code_dir), spec.work_dir, cls=_ProcessTree)
        api = spec.env.get("AWS_LAMBDA_RUNTIME_API")
        tree.marker = f"AWS_LAMBDA_RUNTIME_API={api}".encode() if api else b""
        return tree

    def cleanup_stale(self, root: Path) -> None:
        shutil.rmtree(root, ignore_errors=True)

"""The process backend: no privileges needed, and no isolation.

Each environment gets its own working directory and ``TMPDIR``, and runs in its own session so that its
whole process group can be killed, but it runs as the server's user, sees the host's filesystem (``/tmp``
included) and can signal other processes of that user. The server says so loudly at start-up.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from shoal.sandbox.base import SandboxProcess, SandboxSpec, spawn


class ProcessBackend:
    name = "process"
    isolates = False

    def task_root(self, spec: SandboxSpec) -> str:
        return str(spec.code_dir)

    def sandbox_path(self, spec: SandboxSpec, host_path: Path, inside: str) -> str:
        return str(host_path)

    async def start(self, spec: SandboxSpec) -> SandboxProcess:
        tmp = spec.work_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env = {**spec.env, "TMPDIR": str(tmp)}
        return spawn(spec.argv, env, str(spec.code_dir), spec.work_dir)

    def cleanup_stale(self, root: Path) -> None:
        shutil.rmtree(root, ignore_errors=True)

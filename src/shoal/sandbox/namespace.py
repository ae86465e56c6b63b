"""The namespace backend: each environment in its own mount namespace, set up by the launcher.

The function sees its code read-only at ``/var/task``, Shoal's language bootstrap read-only at
``/var/runtime`` and a private tmpfs ``/tmp`` of ``EphemeralStorage`` size that lives as long as the
environment. (PID/IPC/UTS namespaces, per-environment uids, cgroups and the read-only root come with the full
sandbox.)
"""

from __future__ import annotations

import marshal
import os
import shutil
import subprocess
import sys
from pathlib import Path

from shoal.sandbox.base import SandboxProcess, SandboxSpec, spawn

LAUNCHER = Path(__file__).with_name("launcher.py")
TASK_ROOT = "/var/task"
MOUNT_POINTS = (TASK_ROOT, "/var/runtime", "/opt")


def _launcher_argv() -> list[str]:
    return [os.path.realpath(sys.executable), "-I", "-S", str(LAUNCHER)]


def available() -> tuple[bool, str]:
    """Whether this host lets Shoal create mount namespaces, with the reason when it does not."""
    if os.geteuid() != 0:
        return False, "the server is not running as root"
    try:
        for point in MOUNT_POINTS:
            os.makedirs(point, exist_ok=True)
        probe = subprocess.run([*_launcher_argv(), "--probe"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"the launcher probe failed: {exc}"
    if probe.returncode != 0:
        return False, f"the launcher probe failed: {probe.stderr.decode(errors='replace').strip()}"
    return True, ""


class NamespaceBackend:
    name = "namespace"
    isolates = True  # partially until the full sandbox lands: see the module docstring

    def task_root(self, spec: SandboxSpec) -> str:
        return TASK_ROOT

    def sandbox_path(self, spec: SandboxSpec, host_path: Path, inside: str) -> str:
        return inside

    async def start(self, spec: SandboxSpec) -> SandboxProcess:
        binds: list[tuple[str, str, bool]] = [(str(spec.code_dir), TASK_ROOT, True)]
        binds += [(str(host), inside, True) for host, inside in spec.extra_ro_binds]
        launch = {
            "argv": spec.argv,
            "env": spec.env,
            "binds": binds,
            "tmp_mb": spec.ephemeral_mb,
            "cwd": TASK_ROOT,
        }
        spec.work_dir.mkdir(parents=True, exist_ok=True)
        return spawn([*_launcher_argv(), marshal.dumps(launch).hex()], {}, "/", spec.work_dir)

    def cleanup_stale(self, root: Path) -> None:
        shutil.rmtree(root, ignore_errors=True)

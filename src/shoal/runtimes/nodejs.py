"""The Node.js runtime family: nodejs18.x, nodejs20.x and nodejs22.x on the ``node`` binaries this host has.

A runtime id is offered when a real ``node`` binary of its major version is found: the one the ``runtimes``
setting maps the id to, else the first of ``PATH``, the version managers' install trees (nvm, n, nodenv, asdf,
fnm, volta), ``/usr/local/bin`` and ``/usr/bin``. Every candidate is probed once (``process.execPath`` and
``process.version``), so a version manager's shim resolves to the binary it would run.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from shoal.runtimes.registry import Runtime

log = logging.getLogger(__name__)

BOOTSTRAP_DIR = Path(__file__).parent / "bootstraps" / "nodejs"
SUPPORTED = (18, 20, 22)
_ID_RE = re.compile(r"nodejs(\d+)\.x")
_PROBE = (
    "const f=process.allowedNodeEnvironmentFlags;"
    "console.log([process.execPath,process.versions.node,"
    "+f.has('--experimental-require-module'),+f.has('--experimental-detect-module')].join('\\n'))"
)


@dataclass(frozen=True, slots=True)
class NodeInstall:
    executable: str  # the real binary
    version: str  # "20.20.2"
    require_module_flag: bool  # this node knows --[no-]experimental-require-module
    detect_module_flag: bool  # … and --[no-]experimental-detect-module

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


@dataclass(frozen=True, slots=True)
class NodeRuntime(Runtime):
    """A Node.js runtime: ``runtime_version`` reads ``nodejs:20.v20`` (major, then the release within it)."""

    @property
    def runtime_version(self) -> str:
        parts = self.version.split(".")
        return f"{self.family}:{parts[0]}.v{parts[1] if len(parts) > 1 else '0'}"


def _version_key(path: str) -> tuple[int, ...]:
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", path)
    return tuple(int(n) for n in found.groups()) if found else (0, 0, 0)


def _newest_first(pattern: str) -> list[str]:
    return sorted(glob.glob(pattern), key=_version_key, reverse=True)


def candidates(major: int) -> Iterable[str]:
    """Where a ``node`` of ``major`` may be, in order of preference."""
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory:
            yield os.path.join(directory, "node")
            yield os.path.join(directory, "nodejs")
    home = os.path.expanduser("~")
    nvm_dir = os.environ.get("NVM_DIR") or os.path.join(home, ".nvm")
    yield from _newest_first(os.path.join(nvm_dir, "versions", "node", f"v{major}.*", "bin", "node"))
    n_prefix = os.environ.get("N_PREFIX") or "/usr/local"
    yield from _newest_first(os.path.join(n_prefix, "n", "versions", "node", f"{major}.*", "bin", "node"))
    nodenv_root = os.environ.get("NODENV_ROOT") or os.path.join(home, ".nodenv")
    yield from _newest_first(os.path.join(nodenv_root, "versions", f"{major}.*", "bin", "node"))
    asdf_dir = os.environ.get("ASDF_DATA_DIR") or os.path.join(home, ".asdf")
    yield from _newest_first(os.path.join(asdf_dir, "installs", "nodejs", f"{major}.*", "bin", "node"))
    fnm_dir = os.environ.get("FNM_DIR") or os.path.join(home, ".local", "share", "fnm")
    yield from _newest_first(
        os.path.join(fnm_dir, "node-versions", f"v{major}.*", "installation", "bin", "node")
    )
    volta_home = os.environ.get("VOLTA_HOME") or os.path.join(home, ".volta")
    yield from _newest_first(os.path.join(volta_home, "tools", "image", "node", f"{major}.*", "bin", "node"))
    yield from ("/usr/local/bin/node", "/usr/bin/node", "/usr/bin/nodejs")


def probe(path: str) -> NodeInstall | None:
    """The installation ``path`` runs, or None when it is not a working ``node``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NODE_")}
    try:
        out = subprocess.run(
            [path, "-e", _PROBE], capture_output=True, text=True, timeout=15, check=False, env=env
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.splitlines()
    if out.returncode != 0 or len(lines) != 4 or not re.fullmatch(r"\d+\.\d+\.\d+", lines[1]):
        return None
    return NodeInstall(os.path.realpath(lines[0]), lines[1], lines[2] == "1", lines[3] == "1")


class _Prober:
    """Probes each distinct binary once per discovery."""

    def __init__(self) -> None:
        self._seen: dict[str, NodeInstall | None] = {}

    def resolve(self, path: str) -> NodeInstall | None:
        path = shutil.which(path) or path
        if not os.path.isfile(path) or not os.access(path, os.X_OK):
            return None
        real = os.path.realpath(path)
        if real not in self._seen:
            # a version manager's shim reports the binary it runs (process.execPath): that is what is started
            self._seen[real] = probe(real)
        return self._seen[real]


class NodeFamily:
    name = "nodejs"

    def discover(self, configured: Mapping[str, str]) -> dict[str, Runtime]:
        prober = _Prober()
        runtimes: dict[str, Runtime] = {}
        for major in SUPPORTED:
            runtime_id = f"nodejs{major}.x"
            found: NodeInstall | None = None
            if runtime_id in configured:
                found = prober.resolve(configured[runtime_id])
                if found is None or found.major != major:
                    log.warning(
                        "runtimes setting: %s=%s is not a Node.js %d binary; ignored",
                        runtime_id,
                        configured[runtime_id],
                        major,
                    )
                    continue
            else:
                for candidate in candidates(major):
                    if not os.path.exists(candidate):
                        continue
                    install = prober.resolve(candidate)
                    if install is not None and install.major == major:
                        found = install
                        break
            if found is not None:
                runtimes[runtime_id] = self.runtime(runtime_id, found)
        return runtimes

    @staticmethod
    def runtime(runtime_id: str, install: NodeInstall) -> NodeRuntime:
        match = _ID_RE.fullmatch(runtime_id)
        if match is None or int(match.group(1)) != install.major:
            raise ValueError(f"{runtime_id} cannot run on Node.js {install.version}")
        return NodeRuntime(
            id=runtime_id,
            family="nodejs",
            executable=install.executable,
            version=install.version,
            bootstrap_dir=BOOTSTRAP_DIR,
            bootstrap_argv=(*node_flags(install), "{runtime_dir}/bootstrap.cjs"),
            env={"NODE_PATH": node_path(install.major)},
            host_paths=(_prefix(install.executable),),
            prestart=True,
            # Node reads these (and NODE_PATH, re-read on specialisation) at start-up
            start_time_variables=("NODE_OPTIONS", "NODE_EXTRA_CA_CERTS", "NODE_ICU_DATA", "UV_"),
        )


def node_flags(install: NodeInstall) -> tuple[str, ...]:
    """The flags AWS's Node.js runtimes start ``node`` with. Lambda keeps two experimental features off that
    newer releases turn on by default: ``require()`` of ES modules and detection of ES module syntax.
    (``--expose-gc`` is left out: that V8 flag costs 5-9 ms of every cold start; the bootstrap exposes ``gc``
    on first use instead.)"""
    flags = ["--max-http-header-size=81920"]
    if install.require_module_flag:
        flags.append("--no-experimental-require-module")
    if install.detect_module_flag and install.major >= 22:
        flags.append("--no-experimental-detect-module")
    return tuple(flags)


def node_path(major: int) -> str:
    """``NODE_PATH`` as on AWS: layer directories first, then the runtime's own modules."""
    return f"{{opt}}/nodejs/node{major}/node_modules:{{opt}}/nodejs/node_modules:{{runtime_dir}}/node_modules"


def _prefix(executable: str) -> Path:
    """The installation prefix of a node binary (``…/bin/node`` → ``…``)."""
    return Path(executable).resolve().parent.parent


FAMILY = NodeFamily()

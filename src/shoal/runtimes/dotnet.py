"""The .NET runtime family: ``dotnet8`` (and ``dotnet10``, ``dotnet6``) on the Mono this host has.

AWS runs .NET functions on Microsoft's .NET runtime; Debian offers Mono (``mono-mcs``: the ``mono`` VM, its
class libraries and the ``mcs`` C# compiler). Each id maps to the installed Mono — the real ``mono-sgen``
binary, never a wrapper script — or to the one the ``runtimes`` setting names (``dotnet8=/opt/mono/bin/mono``
or its prefix). ``docs/runtimes/dotnet.md`` says what differs from .NET 8 on AWS.

The runtime (``bootstraps/dotnet``: ``Runtime`` — the Runtime API client, handler loader, logging —, the
public ``Amazon.Lambda.Core`` API and a stand-in for ``Amazon.Lambda.Serialization.SystemTextJson``) is C#,
compiled with that Mono's compiler once per Mono and source change into a cache directory
(``$XDG_CACHE_HOME/shoal/dotnet``, else ``~/.cache/shoal/dotnet``, else a per-user directory under the system
temp dir) at discovery, never on the invoke path. The cache directory is the runtime's ``/var/runtime``:

``bootstrap.exe``
    the runtime;
``Amazon.Lambda.Core.dll``, ``Amazon.Lambda.Serialization.SystemTextJson.dll``
    the API assemblies: functions compile against them (``mcs -r:…``) and the runtime provides them;
``*.so``
    Mono AOT images of the three (``mono --aot``; needs binutils' ``as``/``ld``): their code is then not
    JIT-compiled at every cold start. Without them the runtime still works, only slower to start.
``mscorlib.dll.so``
    only when the Mono installation has no AOT image of its ``mscorlib`` (Debian's package makes one when it
    is configured, if binutils is installed by then): one made here, found through ``--aot-path``. Without
    any, every start JIT-compiles the core library's start-up code (≈ +50 ms).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from shoal.runtimes import cache
from shoal.runtimes.registry import Runtime

log = logging.getLogger(__name__)

SOURCES = Path(__file__).parent / "bootstraps" / "dotnet"
SUPPORTED = ("dotnet8", "dotnet10", "dotnet6")
_BUILD_SCHEMA = "1"
_VERSION_RE = re.compile(r"Mono JIT compiler version (\d+(?:\.\d+)+)")
# name, source directory, target, referenced assemblies (all built here)
ASSEMBLIES = (
    ("Amazon.Lambda.Core", "Amazon.Lambda.Core", "library", ()),
    (
        "Amazon.Lambda.Serialization.SystemTextJson",
        "Amazon.Lambda.Serialization.SystemTextJson",
        "library",
        ("Amazon.Lambda.Core",),
    ),
    ("bootstrap", "Runtime", "exe", ("Amazon.Lambda.Core", "Amazon.Lambda.Serialization.SystemTextJson")),
)
API_ASSEMBLIES = ("Amazon.Lambda.Core.dll", "Amazon.Lambda.Serialization.SystemTextJson.dll")
# Runtime defaults a function's own variables may override: no /dev/shm/mono.<pid> performance-counter file
# (it would outlive a killed environment on the process backend).
MONO_ENV = {"MONO_DISABLE_SHARED_AREA": "1"}
_SCRUBBED_ENV = (
    "MONO_ENV_OPTIONS",
    "MONO_PATH",
    "MONO_OPTIONS",
    "MONO_GAC_PREFIX",
    "MONO_CONFIG",
    "MONO_DEBUG",
)


@dataclass(frozen=True, slots=True)
class Mono:
    executable: str  # the real mono-sgen binary
    version: str  # e.g. "6.8.0.105"
    prefix: Path  # the installation prefix (…/bin/mono → …)
    compiler: Path | None  # mcs.exe (or Roslyn's csc.exe), run with this mono

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


@dataclass(frozen=True, slots=True)
class DotnetRuntime(Runtime):
    """A .NET runtime on Mono: ``INIT_START`` reads ``dotnet:8.mono6.8.0.105``."""

    @property
    def runtime_version(self) -> str:
        return f"dotnet:{self.id.removeprefix('dotnet')}.mono{self.version}"


def _is_binary(path: str) -> bool:
    try:
        if not os.path.isfile(path) or not os.access(path, os.X_OK):
            return False
        with open(path, "rb") as fh:
            return fh.read(2) != b"#!"
    except OSError:
        return False


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update(MONO_ENV)
    return env


def probe(path: str | Path) -> Mono | None:
    """The Mono at ``path`` (a ``mono`` binary, a link to one, or an installation prefix), or None."""
    p = str(path)
    if os.path.isdir(p):
        p = os.path.join(p, "bin", "mono")
    found = shutil.which(p)
    if found is None:
        return None
    executable = os.path.realpath(found)
    if not _is_binary(executable):
        return None
    try:
        out = subprocess.run(
            [executable, "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION_RE.search(out.stdout)
    if out.returncode != 0 or match is None:
        return None
    prefix = Path(executable).parent.parent
    compiler = next(
        (c for c in (prefix / "lib/mono/4.5/mcs.exe", prefix / "lib/mono/4.5/csc.exe") if c.is_file()), None
    )
    return Mono(executable=executable, version=match[1], prefix=prefix, compiler=compiler)


def _candidates() -> Iterator[str]:
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory:
            yield os.path.join(directory, "mono")
            yield os.path.join(directory, "mono-sgen")
    yield from ("/usr/local/bin/mono", "/usr/bin/mono", "/opt/mono/bin/mono")
    yield from sorted(glob.glob("/Library/Frameworks/Mono.framework/Versions/*/bin/mono"), reverse=True)


def installed() -> Mono | None:
    """The first working Mono on PATH or in the usual places."""
    seen: set[str] = set()
    for candidate in _candidates():
        real = os.path.realpath(candidate)
        if real in seen or not os.path.exists(real):
            continue
        seen.add(real)
        mono = probe(real)
        if mono is not None:
            return mono
    return None


def host_paths(mono: Mono) -> tuple[Path, ...]:
    """The installation prefix and Mono's configuration directory (``/etc/mono`` for Debian's packages)."""
    paths = [mono.prefix]
    config = Path("/etc/mono") if mono.prefix == Path("/usr") else mono.prefix / "etc" / "mono"
    if config.is_dir() and not config.is_relative_to(mono.prefix):
        paths.append(config)
    return tuple(paths)


# ---- the runtime build --------------------------------------------------------------------------------


def cache_root() -> Path:
    """Where built dotnet artefacts live (see :func:`shoal.runtimes.cache.cache_root`)."""
    return cache.cache_root("dotnet")


def _source_files() -> list[Path]:
    return sorted(p for p in SOURCES.rglob("*.cs") if p.is_file())


def _build_key(mono: Mono) -> str:
    h = hashlib.sha256()
    h.update(f"{_BUILD_SCHEMA}\0{mono.executable}\0{mono.version}\0{mono.compiler}\0".encode())
    h.update(Path(__file__).read_bytes())  # the build recipe
    with contextlib.suppress(OSError):
        st = (mono.prefix / "lib/mono/4.5/mscorlib.dll").stat()
        h.update(f"{st.st_size}\0{int(st.st_mtime)}\0".encode())
    for path in _source_files():
        h.update(str(path.relative_to(SOURCES)).encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:20]


def _run(argv: list[str], what: str, cwd: Path | None = None) -> str:
    return cache.build_step(argv, what, _clean_env(), cwd)


def compile_args(
    mono: Mono, target: str, out: Path, references: list[Path], sources: list[Path]
) -> list[str]:
    """The compiler command line (mcs.exe or csc.exe run by this mono) for one assembly."""
    if mono.compiler is None:
        raise RuntimeError(f"{mono.prefix} has no C# compiler (mcs.exe)")
    return [
        mono.executable,
        str(mono.compiler),
        "-nologo",
        "-optimize+",
        "-unsafe",
        "-nowarn:649",
        f"-target:{target}",
        f"-out:{out}",
        *(f"-r:{r}" for r in references),
        *(str(s) for s in sources),
    ]


def _compile(mono: Mono, staging: Path) -> None:
    for name, directory, target, references in ASSEMBLIES:
        sources = sorted((SOURCES / directory).rglob("*.cs"))
        out = staging / (name + (".exe" if target == "exe" else ".dll"))
        refs = [staging / f"{r}.dll" for r in references]
        _run(compile_args(mono, target, out, refs, sources), f"compiling {out.name}")


def _aot(mono: Mono, staging: Path) -> list[str]:
    """AOT images of the built assemblies, best effort (``mono --aot`` needs an assembler and a linker)."""
    made: list[str] = []
    for name, _, target, _ in ASSEMBLIES:
        assembly = name + (".exe" if target == "exe" else ".dll")
        try:
            _run(
                [mono.executable, f"--aot=outfile={assembly}.so", "-O=all", assembly],
                f"mono --aot {assembly}",
                cwd=staging,
            )
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            log.warning(".NET runtime: no AOT image of %s (slower cold starts): %s", assembly, exc)
            return made
        made.append(assembly + ".so")
    return made


def has_corlib_aot(mono: Mono) -> bool:
    """Whether Mono finds an AOT image of its mscorlib by itself (beside it, or in Debian's aot-cache)."""
    lib = mono.prefix / "lib" / "mono"
    return (lib / "4.5" / "mscorlib.dll.so").is_file() or any(lib.glob("aot-cache/*/mscorlib.dll.so"))


def _aot_corlib(mono: Mono, staging: Path) -> bool:
    corlib = mono.prefix / "lib" / "mono" / "4.5" / "mscorlib.dll"
    try:
        _run(
            [mono.executable, f"--aot=outfile={staging / 'mscorlib.dll.so'}", "-O=all", str(corlib)],
            "mono --aot mscorlib.dll",
            cwd=staging,
        )
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        log.warning(
            ".NET runtime: Mono has no AOT image of mscorlib and none could be made (slower cold "
            "starts; install binutils): %s",
            exc,
        )
        return False
    return True


def build(mono: Mono, root: Path | None = None) -> Path:
    """The built runtime directory for ``mono`` (building it first when the cache has none)."""
    root = root or cache_root()
    root.mkdir(parents=True, exist_ok=True)
    key = _build_key(mono)
    final = root / f"dotnet-{key}"
    if (final / ".complete").exists():
        with contextlib.suppress(OSError):
            os.utime(final / ".complete")  # last use, for pruning
        return final
    with cache.locked(root / f".dotnet-{key}.lock"):
        if (final / ".complete").exists():
            return final
        started = time.monotonic()
        log.info(
            "Building Shoal's .NET runtime for Mono %s in %s (once per Mono and source change)",
            mono.version,
            final,
        )
        staging = root / f".dotnet-{key}.tmp{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            _compile(mono, staging)
            aot = _aot(mono, staging)
            if aot and not has_corlib_aot(mono) and _aot_corlib(mono, staging):
                aot.append("mscorlib.dll.so")
            for path in staging.iterdir():
                os.chmod(path, 0o644 if path.suffix in (".dll", ".exe") else 0o755)
            os.chmod(staging, 0o755)
            (staging / ".complete").write_text(
                json.dumps({"mono": mono.executable, "version": mono.version, "aot": aot}, indent=1)
            )
            shutil.rmtree(final, ignore_errors=True)
            os.replace(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.info("Built the .NET runtime in %.1f s", time.monotonic() - started)
    _prune(root, final)
    return final


def _prune(root: Path, keep: Path, unused_days: float = 7) -> None:
    """Removes builds no server has used for a week."""
    horizon = time.time() - unused_days * 86400
    for entry in root.iterdir():
        if entry == keep or not entry.name.startswith("dotnet-") or not entry.is_dir():
            continue
        try:
            if (entry / ".complete").stat().st_mtime > horizon:
                continue
        except OSError:
            if entry.stat().st_mtime > horizon:
                continue
        shutil.rmtree(entry, ignore_errors=True)
        with contextlib.suppress(OSError):
            (root / f".{entry.name}.lock").unlink()


class DotnetFamily:
    name = "dotnet"

    def discover(self, configured: Mapping[str, str]) -> dict[str, Runtime]:
        chosen: dict[str, Mono] = {}
        default: Mono | None = None
        looked = False
        for runtime_id in SUPPORTED:
            if runtime_id in configured:
                mono = probe(configured[runtime_id])
                if mono is None:
                    log.warning(
                        "runtimes setting: %s=%s is not a Mono installation; ignored",
                        runtime_id,
                        configured[runtime_id],
                    )
                    continue
            else:
                if not looked:
                    default, looked = installed(), True
                mono = default
            if mono is None:
                continue
            if mono.compiler is None:
                log.warning(
                    "%s: Mono at %s has no C# compiler to build Shoal's .NET runtime; install mono-mcs",
                    runtime_id,
                    mono.prefix,
                )
                continue
            chosen[runtime_id] = mono
        runtimes: dict[str, Runtime] = {}
        built: dict[str, Path | None] = {}
        for runtime_id, mono in chosen.items():
            if mono.executable not in built:
                try:
                    built[mono.executable] = build(mono)
                except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                    log.warning("%s: building Shoal's .NET runtime failed; not offered: %s", runtime_id, exc)
                    built[mono.executable] = None
            bootstrap_dir = built[mono.executable]
            if bootstrap_dir is not None:
                runtimes[runtime_id] = self.runtime(runtime_id, mono, bootstrap_dir)
        return runtimes

    @staticmethod
    def runtime(runtime_id: str, mono: Mono, bootstrap_dir: Path) -> Runtime:
        if runtime_id not in SUPPORTED:
            raise ValueError(runtime_id)
        try:
            made = json.loads((bootstrap_dir / ".complete").read_text()).get("aot", [])
        except (OSError, ValueError):
            made = []
        # --debug: line numbers in stack traces from a function's .mdb/.pdb (no measurable cost)
        flags = ["--debug"]
        if "mscorlib.dll.so" in made:
            flags.append("--aot-path={runtime_dir}")
        return DotnetRuntime(
            id=runtime_id,
            family="dotnet",
            executable=mono.executable,
            version=mono.version,
            bootstrap_dir=bootstrap_dir,
            bootstrap_argv=(*flags, "{runtime_dir}/bootstrap.exe"),
            env=dict(MONO_ENV),
            host_paths=host_paths(mono),
        )


def api_assemblies(runtime: Runtime) -> list[Path]:
    """The API assemblies functions compile against (``mcs -r:…``), from a discovered runtime."""
    return [runtime.bootstrap_dir / name for name in API_ASSEMBLIES]


FAMILY = DotnetFamily()

__all__ = ["FAMILY", "DotnetFamily", "DotnetRuntime", "Mono", "api_assemblies", "build", "probe"]

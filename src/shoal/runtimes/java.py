"""The Java runtime family: java11, java17, java21 and java25 on the JDKs/JREs this host has.

Each runtime id maps to an installed JDK or JRE of that major version (the real ``bin/java`` under its home,
never the ``/usr/bin/java`` alternatives link), or to the path the ``runtimes`` setting gives
(``java17=/usr/lib/jvm/java-17-openjdk-amd64``; a home or its ``bin/java``).

The bootstrap (``bootstraps/java``: the runtime in ``src``, the aws-lambda-java-core API in ``api``) is
compiled with ``javac`` once per JVM into a cache directory (``$XDG_CACHE_HOME/shoal/java``, else
``~/.cache/shoal/java``, else a per-user directory under the system temp dir), never into the package and
never on the invoke path: :meth:`JavaFamily.discover` does it at server start, and reuses the result while
the sources and the JVM are unchanged. The cache directory is the runtime's ``/var/runtime``:

``bootstrap.jar``
    the runtime and the API classes, the JVM's whole class path;
``jvm.flags``
    defaults read with ``-XX:Flags`` *before* ``JAVA_TOOL_OPTIONS``, so a function can override them;
``cds/<runtime dir>.jsa``
    class-data sharing archives (AppCDS) made by a training run of the runtime. A JDK before 19 only maps an
    archive when the jar sits at the very path it had when the archive was made, so there is one archive per
    place the directory is seen at — its host path (process sandbox) and ``/var/runtime`` (namespace sandbox,
    made inside a private mount namespace) — and the JVM is pointed at ``{runtime_dir}/cds{runtime_dir}.jsa``.
    A missing or unusable archive only costs start-up time: the JVM then runs without it.
``app.aot``
    from Java 25, an AOT cache (JEP 483/514) from the same training run instead: classes loaded and linked
    ahead of time; these JVMs accept a moved jar, so one cache serves both views.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from shoal.runtimes import cache
from shoal.runtimes.registry import Runtime

log = logging.getLogger(__name__)

SOURCES = Path(__file__).parent / "bootstraps" / "java"
SUPPORTED = (11, 17, 21, 25)
MAIN_CLASS = "shoal.runtime.Bootstrap"
STANDBY_CLASS = "shoal.runtime.Standby"
STANDBY_LIBRARY = "libshoalstandby.so"
SANDBOX_RUNTIME_DIR = "/var/runtime"
# JVM defaults a function may override with JAVA_TOOL_OPTIONS: C1 only (AWS's java17 runtime's default) and
# no hsperfdata files in /tmp. The collector is left to ergonomics (Serial below 2 CPUs or 1792 MB, which a
# memory-limited sandbox gives): forcing one here would make a function's -XX:+UseG1GC fail ("multiple
# GCs"), and on JDK 17 G1 starts no slower (only it maps the base archive's heap objects).
JVM_FLAGS = ("TieredStopAtLevel=1", "-UsePerfData")
_BUILD_SCHEMA = "1"  # the cache key also covers this module's source and the bootstrap sources
_SCRUBBED_ENV = ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH", "JAVA_OPTIONS")


@dataclass(frozen=True, slots=True)
class Jvm:
    home: Path  # real path of the installation (JAVA_HOME)
    java: Path  # real path of bin/java
    version: str  # e.g. "17.0.15"

    @property
    def major(self) -> int:
        return _major(self.version)

    @property
    def javac(self) -> Path | None:
        path = self.home / "bin" / "javac"
        return path if _is_binary(path) else None


def _major(version: str) -> int:
    parts = version.split(".")
    try:
        return int(parts[1]) if parts[0] == "1" and len(parts) > 1 else int(parts[0])
    except ValueError:
        return 0


def _is_binary(path: Path) -> bool:
    """An executable file that is not a script (a shim would cost a shell start on every cold start)."""
    try:
        if not path.is_file() or not os.access(path, os.X_OK):
            return False
        with path.open("rb") as fh:
            return fh.read(2) != b"#!"
    except OSError:
        return False


def _release_version(home: Path) -> str | None:
    try:
        text = (home / "release").read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("JAVA_VERSION="):
            return line.partition("=")[2].strip().strip('"') or None
    return None


def _probe_version(java: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(java), "-XshowSettings:properties", "-version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=_clean_env(),
        )
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.stderr.splitlines():
        key, _, value = line.strip().partition(" = ")
        if key == "java.version":
            return value.strip()
    return None


def probe(path: str | Path) -> Jvm | None:
    """The JVM at ``path`` (a Java home, or a ``java`` binary or link to one), or None."""
    p = Path(path)
    if p.is_dir():
        p = p / "bin" / "java"
    elif not p.exists():
        found = shutil.which(str(p))
        if found is None:
            return None
        p = Path(found)
    java = Path(os.path.realpath(p))
    if not _is_binary(java):
        return None
    home = java.parent.parent
    version = _release_version(home) or _probe_version(java)
    if version is None or _major(version) == 0:
        return None
    return Jvm(home=home, java=java, version=version)


def _candidate_homes() -> Iterator[Path]:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        yield Path(java_home)
    for pattern in (
        "/usr/lib/jvm/*",
        "/usr/lib64/jvm/*",
        "/usr/local/lib/jvm/*",
        "/opt/java/*",
        "/opt/jdk*",
        "/usr/java/*",
        os.path.expanduser("~/.sdkman/candidates/java/*"),
        os.path.expanduser("~/.jdks/*"),
    ):
        for home in sorted(glob.glob(pattern)):
            yield Path(home)
    on_path = shutil.which("java")
    if on_path:
        yield Path(os.path.realpath(on_path)).parent.parent


def installed() -> list[Jvm]:
    """Every distinct JVM this host has (a home reached through several links counts once)."""
    seen: set[Path] = set()
    found: list[Jvm] = []
    for home in _candidate_homes():
        java = home / "bin" / "java"
        if not java.exists():
            continue
        real = Path(os.path.realpath(java))
        if real in seen:
            continue
        seen.add(real)
        jvm = probe(real)
        if jvm is not None:
            found.append(jvm)
    return found


def _version_key(version: str) -> tuple[int, ...]:
    out = []
    for part in version.replace("_", ".").replace("+", ".").replace("-", ".").split("."):
        out.append(int(part) if part.isdigit() else 0)
    return tuple(out)


def _pick(jvms: Iterable[Jvm], major: int) -> Jvm | None:
    """The JVM for a major version: a JDK over a JRE (it can build its own bootstrap), then the newest."""
    matching = [j for j in jvms if j.major == major]
    if not matching:
        return None
    return max(matching, key=lambda j: (j.javac is not None, _version_key(j.version)))


def _javac_for(jvm: Jvm, jvms: Iterable[Jvm]) -> Path | None:
    """A javac that can compile for ``jvm``: its own, else any newer JDK's (with ``--release``)."""
    if jvm.javac is not None:
        return jvm.javac
    newer = sorted(
        (j for j in jvms if j.javac is not None and j.major >= jvm.major),
        key=lambda j: _version_key(j.version),
    )
    return newer[0].javac if newer else None


def host_paths(home: Path) -> tuple[Path, ...]:
    """The JVM home and the directories its links point into (Debian links conf/ into /etc/java-N-openjdk)."""
    paths = {home}
    for dirpath, dirnames, filenames in os.walk(home):
        if Path(dirpath) == home:  # license texts and docs (Debian links them into /usr/share/doc)
            dirnames[:] = [d for d in dirnames if d not in ("legal", "docs", "man")]
            filenames = [f for f in filenames if f not in ("docs", "man")]
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                continue
            target = Path(os.path.realpath(full))
            if target.is_relative_to(home):
                continue
            paths.add(target if target.is_dir() else target.parent)
    reduced: list[Path] = []
    for p in sorted(paths, key=lambda x: len(x.parts)):
        if not any(p.is_relative_to(r) for r in reduced):
            reduced.append(p)
    return tuple(sorted(reduced))


# ---- the bootstrap build ------------------------------------------------------------------------------


def cache_root() -> Path:
    """Where built java artefacts live (see :func:`shoal.runtimes.cache.cache_root`)."""
    return cache.cache_root("java")


def _source_files() -> list[Path]:
    return sorted(p for p in SOURCES.rglob("*") if p.suffix in (".java", ".c") and p.is_file())


def _build_key(jvm: Jvm, javac: Path) -> str:
    h = hashlib.sha256()
    h.update(f"{_BUILD_SCHEMA}\0{jvm.java}\0{jvm.version}\0{javac}\0".encode())
    h.update(Path(__file__).read_bytes())  # the build recipe and the JVM flags
    with contextlib.suppress(OSError):
        st = (jvm.home / "lib" / "modules").stat()
        h.update(f"{st.st_size}\0{int(st.st_mtime)}\0".encode())
    for path in _source_files():
        h.update(str(path.relative_to(SOURCES)).encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:20]


def archive_name(runtime_dir: str) -> str:
    """The archive file for a runtime directory seen at ``runtime_dir`` (see the module docstring)."""
    return "cds/" + runtime_dir.strip("/") + ".jsa"


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.setdefault("LANG", "C.UTF-8")
    return env


def _run(argv: list[str], what: str, cwd: Path | None = None) -> None:
    cache.build_step(argv, what, _clean_env(), cwd)


def _write_jar(jar: Path, classes: Path, include: Iterable[str], manifest: str = "") -> None:
    """A reproducible jar (a zip with a manifest, plus ``manifest``'s lines) of the classes under
    ``classes`` in the given packages."""
    prefixes = tuple(p.replace(".", "/") + "/" for p in include)
    names = sorted(
        str(p.relative_to(classes)).replace(os.sep, "/")
        for p in classes.rglob("*.class")
        if str(p.relative_to(classes)).replace(os.sep, "/").startswith(prefixes)
    )
    stamp = (2024, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(jar, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("META-INF/MANIFEST.MF", stamp)
        info.external_attr = 0o644 << 16
        zf.writestr(info, f"Manifest-Version: 1.0\r\nCreated-By: shoal\r\n{manifest}\r\n")
        for name in names:
            info = zipfile.ZipInfo(name, stamp)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, (classes / name).read_bytes())


def _compile(jvm: Jvm, javac: Path, work: Path) -> Path:
    """Compiles the runtime, the API and the training handlers; returns the classes directory."""
    classes = work / "classes"
    classes.mkdir()
    sources = [str(p) for p in _source_files() if p.suffix == ".java"]
    argfile = work / "sources.txt"
    argfile.write_text("\n".join(f'"{s}"' for s in sources) + "\n")
    _run(
        [
            str(javac),
            "-J-XX:TieredStopAtLevel=1",  # C1 only: javac's own run takes half the CPU time
            "-J-XX:+UseSerialGC",
            "--release",
            "11",  # the oldest JVM the bootstrap supports: one source for every version
            "-XDstringConcat=inline",  # no invokedynamic bootstrap on the runtime's cold path
            "-nowarn",
            "-encoding",
            "UTF-8",
            "-d",
            str(classes),
            f"@{argfile}",
        ],
        "javac",
    )
    return classes


def _trainer_task(classes: Path, work: Path) -> Path:
    """The training run's /var/task: handlers in lib/train.jar, one as a plain class file."""
    task = work / "task"
    (task / "lib").mkdir(parents=True)
    _write_jar(task / "lib" / "train.jar", classes, ["shoal.train"])
    plain = Path("shoal") / "train" / "Plain.class"
    (task / plain).parent.mkdir(parents=True)
    shutil.copy2(classes / plain, task / plain)
    return task


AOT_CACHE = "app.aot"
AOT_MAJOR = 25  # JEP 483/514: an AOT cache (classes loaded and linked ahead of time), made in one run


def _archive_flag(major: int, runtime_dir: str) -> str:
    # An AOT cache is also named with SharedArchiveFile: unlike -XX:AOTCache, that leaves a function free to
    # set -Xshare:on/off/auto in JAVA_TOOL_OPTIONS ("AOTCache cannot be used at the same time with -Xshare").
    name = AOT_CACHE if major >= AOT_MAJOR else archive_name(runtime_dir)
    return f"-XX:SharedArchiveFile={runtime_dir}/{name}"


def _jvm_args(runtime_dir: str, archive: str | None) -> list[str]:
    return [
        f"-XX:Flags={runtime_dir}/jvm.flags",
        *([archive] if archive else []),
        "-Djava.net.preferIPv4Stack=true",
        "-cp",
        f"{runtime_dir}/bootstrap.jar",
    ]


def _dump(jvm: Jvm, target: Path, runtime_dir: str, task: Path, namespace_of: Path | None = None) -> None:
    """Runs the training with ``-XX:ArchiveClassesAtExit`` (``-XX:AOTCacheOutput`` from Java 25);
    ``namespace_of`` binds that directory at ``runtime_dir`` in a private mount namespace first."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".tmp{os.getpid()}")
    output = "AOTCacheOutput" if jvm.major >= AOT_MAJOR else "ArchiveClassesAtExit"
    args = _jvm_args(runtime_dir, f"-XX:{output}={partial}")
    argv = [str(jvm.java), *args, "shoal.runtime.Trainer", str(task)]
    if namespace_of is not None:
        argv = [sys.executable, "-I", "-S", "-c", _NAMESPACE_DUMP, str(namespace_of), runtime_dir, *argv]
    _run(argv, f"the class-data sharing training run ({runtime_dir})", cwd=task)
    if not partial.exists():
        raise RuntimeError(f"the training run made no archive at {partial}")
    os.chmod(partial, 0o644)
    os.replace(partial, target)


# Run as `python -c` by a privileged server: bind the bootstrap directory at /var/runtime in a private mount
# namespace, then exec the training JVM (the jar path recorded in the archive is then /var/runtime/…).
_NAMESPACE_DUMP = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
def check(r, what):
    if r != 0:
        e = ctypes.get_errno(); sys.stderr.write(what + ": " + os.strerror(e) + "\\n"); sys.exit(125)
check(libc.unshare(0x00020000), "unshare")
check(libc.mount(None, b"/", None, (1 << 14) | (1 << 18), None), "make / private")
os.makedirs(sys.argv[2], exist_ok=True)
check(libc.mount(sys.argv[1].encode(), sys.argv[2].encode(), None, 0x1000, None), "bind")
os.execv(sys.argv[3], sys.argv[3:])
"""


def _can_unshare() -> bool:
    return os.geteuid() == 0 and hasattr(ctypes, "CDLL")


def _compile_native(jvm: Jvm, target: Path, quiet: bool = False) -> None:
    """The pre-started runtime's one native function (``native/standby.c``), when this host has a C compiler
    and the JDK's ``jni.h``; without it the runtime is not pre-started (its JVMs start for their function)."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    include = jvm.home / "include"
    if compiler is None or not (include / "jni.h").exists():
        if not quiet:
            log.info("Java %s: no C compiler or jni.h here: JVMs are not pre-started", jvm.major)
        return
    source = SOURCES / "native" / "standby.c"
    partial = target.with_name(target.name + ".partial")
    argv = [compiler, "-shared", "-fPIC", "-O2", f"-I{include}", f"-I{include / 'linux'}", "-o", str(partial)]
    try:
        _run([*argv, str(source)], "compiling the standby library")
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        log.warning("Java %s: the standby library did not compile: %s", jvm.major, exc)
        partial.unlink(missing_ok=True)
        return
    os.chmod(partial, 0o644)
    os.replace(partial, target)  # whole or not at all: a JVM may be loading it


def build(jvm: Jvm, javac: Path, root: Path | None = None) -> Path:
    """The built bootstrap directory for ``jvm`` (building it first when the cache has none)."""
    root = root or cache_root()
    key = _build_key(jvm, javac)
    final = root / f"java{jvm.major}-{key}"
    if (final / ".complete").exists():
        with contextlib.suppress(OSError):
            os.utime(final / ".complete")  # last use, for pruning
        if not (final / STANDBY_LIBRARY).exists():  # built before this host had a C compiler
            with cache.locked(root / f".java{jvm.major}-{key}.lock"):
                _compile_native(jvm, final / STANDBY_LIBRARY, quiet=True)
        return final
    with cache.locked(root / f".java{jvm.major}-{key}.lock"):
        if (final / ".complete").exists():
            return final
        started = time.monotonic()
        log.info("Building the Java %s bootstrap in %s (once per JVM and source change)", jvm.major, final)
        shutil.rmtree(final, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix="shoal-java-build-") as tmp:
            work = Path(tmp)
            classes = _compile(jvm, javac, work)
            staging = root / f".java{jvm.major}-{key}.tmp{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            _write_jar(
                staging / "bootstrap.jar",
                classes,
                ["shoal.runtime", "com.amazonaws"],
                f"Premain-Class: {STANDBY_CLASS}\r\n",  # the pre-started runtime is its own agent
            )
            (staging / "jvm.flags").write_text("".join(f"{flag}\n" for flag in JVM_FLAGS))
            (staging / "cds").mkdir()
            for path in (staging, staging / "cds"):
                os.chmod(path, 0o755)
            for path in (staging / "bootstrap.jar", staging / "jvm.flags"):
                os.chmod(path, 0o644)
            _compile_native(jvm, staging / STANDBY_LIBRARY)
            os.replace(staging, final)  # the archives record the jar's final path: make them only now
            task = _trainer_task(classes, work)
            archives = _make_archives(jvm, final, task)
        (final / ".complete").write_text(
            json.dumps(
                {"java": str(jvm.java), "version": jvm.version, "javac": str(javac), "archives": archives},
                indent=1,
            )
        )
        log.info("Built the Java %s bootstrap in %.1f s", jvm.major, time.monotonic() - started)
    _prune(root, final)
    return final


def _prune(root: Path, keep: Path, unused_days: float = 7) -> None:
    """Removes builds for the same Java version that no server has used for a week."""
    horizon = time.time() - unused_days * 86400
    prefix = keep.name.split("-")[0] + "-"
    for entry in root.iterdir():
        if entry == keep or not entry.name.startswith(prefix) or not entry.is_dir():
            continue
        try:
            if (entry / ".complete").stat().st_mtime > horizon:
                continue
        except OSError:
            if entry.stat().st_mtime > horizon:  # maybe another server's build in progress
                continue
        shutil.rmtree(entry, ignore_errors=True)
        with contextlib.suppress(OSError):
            (root / f".{entry.name}.lock").unlink()


def _make_archives(jvm: Jvm, final: Path, task: Path) -> list[str]:
    if jvm.major >= AOT_MAJOR:  # these JVMs accept a cache whose jar has moved: one serves both views
        try:
            _dump(jvm, final / AOT_CACHE, str(final), task)
            return [AOT_CACHE]
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            log.warning("Java %s: no AOT cache (slower cold starts): %s", jvm.major, exc)
            return []
    made = []
    host_archive = final / archive_name(str(final))
    try:
        _dump(jvm, host_archive, str(final), task)
        made.append(str(host_archive.relative_to(final)))
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        log.warning("Java %s: no class-data sharing archive (slower cold starts): %s", jvm.major, exc)
        return made
    sandbox_archive = final / archive_name(SANDBOX_RUNTIME_DIR)
    try:
        if _can_unshare():  # the jar at the very path the namespace sandbox shows it at
            _dump(jvm, sandbox_archive, SANDBOX_RUNTIME_DIR, task, namespace_of=final)
        elif jvm.major >= 19:  # these JVMs also accept an archive whose jar has moved
            sandbox_archive.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(host_archive, sandbox_archive)
        else:
            return made
        made.append(str(sandbox_archive.relative_to(final)))
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        log.warning("Java %s: no archive for the namespace sandbox (slower cold starts): %s", jvm.major, exc)
    return made


def locale_environment() -> dict[str, str]:
    """``LC_ALL=C.UTF-8`` when the host lacks the ``en_US.UTF-8`` locale the environment's ``LANG`` names.

    A JVM before 18 takes its default charset and its file-name encoding (``sun.jnu.encoding``) from the
    locale: with ``LANG=en_US.UTF-8`` and no such locale it falls back to ASCII, where AWS's JVM has UTF-8.
    A function's own ``LC_ALL`` still wins (runtime variables are defaults).
    """
    try:
        out = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    names = {n.strip().lower().replace("-", "") for n in out.splitlines()}
    if "en_us.utf8" in names or "c.utf8" not in names:
        return {}
    return {"LC_ALL": "C.UTF-8"}


def _try_build(runtime_id: str, jvm: Jvm, javac: Path) -> Path | None:
    try:
        return build(jvm, javac)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        log.warning("%s: building Shoal's Java bootstrap failed; not offered: %s", runtime_id, exc)
        return None


class JavaFamily:
    name = "java"

    def discover(self, configured: Mapping[str, str]) -> dict[str, Runtime]:
        jvms = installed()
        for runtime_id, path in configured.items():
            if runtime_id.startswith("java"):
                jvm = probe(path)
                if jvm is not None:
                    jvms.append(jvm)
        chosen: list[tuple[str, Jvm, Path]] = []
        for major in SUPPORTED:
            runtime_id = f"java{major}"
            if runtime_id in configured:
                jvm = probe(configured[runtime_id])
                if jvm is None or jvm.major != major:
                    log.warning(
                        "runtimes setting: %s=%s is not a Java %s installation; ignored",
                        runtime_id,
                        configured[runtime_id],
                        major,
                    )
                    continue
            else:
                jvm = _pick(jvms, major)
            if jvm is None:
                continue
            javac = _javac_for(jvm, jvms)
            if javac is None:
                log.warning(
                    "%s: %s has no javac and no newer JDK is installed to build Shoal's Java bootstrap; "
                    "install a JDK (e.g. openjdk-%s-jdk-headless) to offer %s",
                    runtime_id,
                    jvm.home,
                    major,
                    runtime_id,
                )
                continue
            chosen.append((runtime_id, jvm, javac))
        runtimes: dict[str, Runtime] = {}
        if not chosen:
            return runtimes
        with ThreadPoolExecutor(max_workers=2) as pool:  # a first build takes seconds per JVM
            built = list(pool.map(lambda c: _try_build(c[0], c[1], c[2]), chosen))
        env = locale_environment()
        for (runtime_id, jvm, _), bootstrap_dir in zip(chosen, built, strict=True):
            if bootstrap_dir is not None:
                runtimes[runtime_id] = self.runtime(runtime_id, jvm, bootstrap_dir, env)
        return runtimes

    @staticmethod
    def runtime(
        runtime_id: str, jvm: Jvm, bootstrap_dir: Path, env: Mapping[str, str] | None = None
    ) -> Runtime:
        try:
            made = json.loads((bootstrap_dir / ".complete").read_text()).get("archives", [])
        except (OSError, ValueError):
            made = []
        # a JVM pointed at a missing AOT cache prints errors at every start; a missing CDS archive is silent
        archive = _archive_flag(jvm.major, "{runtime_dir}") if made else None
        return Runtime(
            id=runtime_id,
            family="java",
            executable=str(jvm.java),
            version=jvm.version,
            bootstrap_dir=bootstrap_dir,
            # the heap from the function's MemorySize, not the host's RAM (the JVM cannot see the cgroup):
            # AWS gives the heap most of the memory
            bootstrap_argv=(
                "-XX:MaxRAM={memory_mb}m",
                "-XX:MaxRAMPercentage=85",
                *_jvm_args("{runtime_dir}", archive),
                MAIN_CLASS,
            ),
            env=dict(env or {}),
            host_paths=host_paths(jvm.home),
            prestart=(bootstrap_dir / STANDBY_LIBRARY).exists(),
            standby_flags=(f"-javaagent:{{runtime_dir}}/bootstrap.jar={{runtime_dir}}/{STANDBY_LIBRARY}",),
            # read by the java launcher or the JVM only as it starts (the JVM's time zone and encodings too)
            start_time_variables=(
                "JAVA_TOOL_OPTIONS",
                "_JAVA_OPTIONS",
                "JDK_JAVA_OPTIONS",
                "TZ",
                "LANG",
                "LC_",
            ),
        )


FAMILY = JavaFamily()

"""The Ruby runtime family: ruby3.2, ruby3.3, ruby3.4 (and ruby4.0) on the Ruby interpreters this host has.

AWS users name their function's runtime by the Lambda id (``ruby3.3``); a host rarely has that exact Ruby
(Debian 12 ships 3.1). Each id therefore runs on the best installed CRuby of the same major version: the exact
minor version when installed, otherwise the newest installed one. ``docs/runtimes/ruby.md`` says what that
means for functions. The ``runtimes`` setting maps an id to a given ``ruby`` (a version manager's shim is
resolved to the real binary it runs).
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

BOOTSTRAP_DIR = Path(__file__).parent / "bootstraps" / "ruby"
SUPPORTED = ("3.2", "3.3", "3.4", "4.0")  # the Lambda ids offered, as in botocore's Runtime enum

# One run of the interpreter tells all we need; RubyGems is asked last, so a broken one still leaves a usable
# (gem-less) interpreter.
_PROBE = (
    'require "rbconfig"; c = RbConfig::CONFIG; '
    'print RUBY_ENGINE, "\\n", RbConfig.ruby, "\\n", RUBY_VERSION, "\\n", c["ruby_version"], "\\n", '
    'c["prefix"], "\\n"; '
    'begin; require "rubygems"; user = (Gem.user_dir rescue nil); '
    'print((Gem.path - [user]).join(File::PATH_SEPARATOR), "\\n"); rescue LoadError; print "\\n"; end'
)


@dataclass(frozen=True, slots=True)
class Interpreter:
    executable: str  # the real binary (symlinks and shims resolved)
    version: str  # RUBY_VERSION, e.g. "3.1.7"
    abi: str  # RbConfig::CONFIG["ruby_version"], the gem directory name, e.g. "3.1.0"
    prefix: str
    gem_dirs: tuple[str, ...]  # the interpreter's own gem directories (Gem.path without the user's)

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def key(self) -> tuple[int, ...]:
        return tuple(int(p) if p.isdigit() else 0 for p in self.version.split("."))


def _is_script(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == b"#!"
    except OSError:
        return True


def probe(path: str) -> Interpreter | None:
    """What ``path`` runs, or None when it is not a working CRuby. A shim (rbenv, asdf …) is run once to
    learn the real binary it dispatches to; the runtime then starts that binary directly."""
    path = shutil.which(path) or path
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        return None
    try:
        out = subprocess.run(
            [path, "--disable-gems", "-e", _PROBE],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split("\n")
    if out.returncode != 0 or len(lines) < 6 or lines[0] != "ruby":
        return None
    executable = os.path.realpath(lines[1])
    version, abi, prefix = lines[2], lines[3], lines[4]
    if not re.fullmatch(r"\d+\.\d+\.\d+", version) or not os.access(executable, os.X_OK):
        return None
    if _is_script(executable):
        return None
    gem_dirs = tuple(dict.fromkeys(d for d in lines[5].split(os.pathsep) if d and os.path.isdir(d)))
    return Interpreter(executable, version, abi, os.path.realpath(prefix), gem_dirs)


def _candidates() -> Iterable[str]:
    """Where Ruby interpreters live: PATH (``ruby``, ``ruby3.x``), rbenv, rvm, chruby, asdf, /usr(/local)."""
    home = os.path.expanduser("~")
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory:
            continue
        yield os.path.join(directory, "ruby")
        yield from sorted(glob.glob(os.path.join(directory, "ruby[0-9]*")), reverse=True)
    rbenv_root = os.environ.get("RBENV_ROOT", os.path.join(home, ".rbenv"))
    for pattern in (
        os.path.join(rbenv_root, "versions", "*", "bin", "ruby"),
        os.path.join(home, ".rvm", "rubies", "ruby-*", "bin", "ruby"),
        os.path.join(home, ".rubies", "*", "bin", "ruby"),
        "/opt/rubies/*/bin/ruby",
        os.path.join(
            os.environ.get("ASDF_DATA_DIR", os.path.join(home, ".asdf")),
            "installs",
            "ruby",
            "*",
            "bin",
            "ruby",
        ),
    ):
        yield from sorted(glob.glob(pattern), reverse=True)
    yield from ("/usr/local/bin/ruby", "/usr/bin/ruby")


def installed() -> list[Interpreter]:
    """Every distinct CRuby found, newest first. Shims met on the way are skipped: the versions they manage
    are found in their own directories."""
    found: dict[str, Interpreter] = {}
    seen: set[str] = set()
    for candidate in _candidates():
        real = os.path.realpath(candidate)
        if real in seen or not os.path.isfile(real) or _is_script(real):
            continue
        seen.add(real)
        interpreter = probe(real)
        if interpreter is not None:
            found.setdefault(interpreter.executable, interpreter)
    return sorted(found.values(), key=lambda i: i.key, reverse=True)


def choose(runtime_id: str, interpreters: Iterable[Interpreter]) -> Interpreter | None:
    """The interpreter for ``runtime_id``: the same major.minor when installed, else the newest of the same
    major version; None when no Ruby of that major version is installed."""
    major, minor = _id_version(runtime_id)
    same_major = sorted((i for i in interpreters if i.major == major), key=lambda i: i.key, reverse=True)
    exact = [i for i in same_major if i.key[:2] == (major, minor)]
    best = exact or same_major
    return best[0] if best else None


def _id_version(runtime_id: str) -> tuple[int, int]:
    match = re.fullmatch(r"ruby(\d+)\.(\d+)", runtime_id)
    if match is None:
        raise ValueError(runtime_id)
    return int(match[1]), int(match[2])


class RubyFamily:
    name = "ruby"

    def discover(self, configured: Mapping[str, str]) -> dict[str, Runtime]:
        runtimes: dict[str, Runtime] = {}
        found: list[Interpreter] | None = None
        for minor in SUPPORTED:
            runtime_id = f"ruby{minor}"
            if runtime_id in configured:
                interpreter = probe(configured[runtime_id])
                if interpreter is None or interpreter.major != _id_version(runtime_id)[0]:
                    log.warning(
                        "runtimes setting: %s=%s is not a Ruby %s.x interpreter; ignored",
                        runtime_id,
                        configured[runtime_id],
                        minor.split(".")[0],
                    )
                    continue
            else:
                if found is None:
                    found = installed()
                interpreter = choose(runtime_id, found)
            if interpreter is None:
                continue
            if interpreter.key[:2] != _id_version(runtime_id):
                log.info("%s runs on Ruby %s (%s)", runtime_id, interpreter.version, interpreter.executable)
            runtimes[runtime_id] = self.runtime(runtime_id, interpreter)
        return runtimes

    @staticmethod
    def runtime(runtime_id: str, interpreter: Interpreter) -> Runtime:
        major, minor = _id_version(runtime_id)
        # gems built for the interpreter that runs first, then those of the Ruby the id names (a package
        # bundled for AWS's ruby3.3 has vendor/bundle/ruby/3.3.0): pure-Ruby gems work from there
        abis = dict.fromkeys((interpreter.abi, f"{major}.{minor}.0"))
        gem_path = [f"{{task_root}}/vendor/bundle/ruby/{abi}" for abi in abis]
        gem_path += [f"{{opt}}/ruby/gems/{abi}" for abi in abis]
        gem_path += interpreter.gem_dirs
        prefix = Path(interpreter.prefix)
        outside = tuple(Path(d) for d in interpreter.gem_dirs if not Path(d).is_relative_to(prefix))
        return Runtime(
            id=runtime_id,
            family="ruby",
            executable=interpreter.executable,
            version=interpreter.version,
            bootstrap_dir=BOOTSTRAP_DIR,
            bootstrap_argv=("--disable-gems", "{runtime_dir}/bootstrap.rb"),
            env={
                "GEM_PATH": ":".join(gem_path),
                "RUBYLIB": "{task_root}:{task_root}/lib:{opt}/ruby/lib",
            },
            host_paths=(prefix, *_outermost(outside)),
        )


def _outermost(paths: Iterable[Path]) -> tuple[Path, ...]:
    """``paths`` without those inside another one of them."""
    ordered = sorted(set(paths), key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in ordered:
        if not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return tuple(kept)


FAMILY = RubyFamily()

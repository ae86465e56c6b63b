"""Blueprints: ready-to-deploy starter functions, one per runtime Shoal offers and per common event source.

Each blueprint is a directory ``templates/<name>/`` shipped as package data: the function's files, a sample
``event.json`` in the exact shape AWS sends (spec §10), a ``README.md``, and the manifest ``blueprint.json``::

    {
      "runtime": "python3.12",                      # the Lambda runtime id to deploy it with
      "handler": "lambda_function.lambda_handler",  # the Handler string for that runtime
      "description": "Hello world in Python",       # one line for `shoal blueprints`
      "event": "event.json",                        # the sample event (default event.json)
      "package": ".",                               # what to deploy, relative to the written directory
      "memory": 512, "timeout": 10,                 # optional: --memory / --timeout for `shoal deploy`
      "executable": ["bootstrap"],                  # optional: files written with mode 0755
      "build": "javac" | "mcs",                  # optional: how the package is built from the sources
      "install": "what a host needs for the runtime"
    }

:func:`catalogue` reads every manifest, :func:`write` copies a blueprint into a directory (never into a
non-empty one unless forced), :func:`build` compiles what needs compiling (Java, with ``javac`` against the
aws-lambda-java-core API sources Shoal's Java runtime ships), and :func:`deploy_command` is the
``shoal deploy …`` line to run next.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

MANIFEST = "blueprint.json"
TEMPLATES = "templates"
SKIPPED = {"__pycache__", ".DS_Store", MANIFEST}
SKIPPED_SUFFIXES = (".pyc", ".pyo")
BUILDS = ("javac", "mcs")
JAVA_RELEASE = 17
JAVA_BUILD_DIR = "build"
JAVA_SOURCES = "src/main/java"
JAVAC_TIMEOUT = 300
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_FUNCTION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# The handler string each runtime family accepts (spec §4.3), to check manifests against.
_HANDLER_RES = {
    "python": re.compile(r"^[A-Za-z_][\w/]*(\.[A-Za-z_]\w*)+$"),
    "nodejs": re.compile(r"^[\w./-]+\.[A-Za-z_$][\w$]*$"),
    "ruby": re.compile(r"^[\w/]+\.([A-Z]\w*(::[A-Z]\w*)*\.)?[a-z_]\w*[?!]?$"),
    "java": re.compile(r"^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*(::[A-Za-z_$][\w$]*)?$"),
    "dotnet": re.compile(r"^[\w.]+::[\w.]+::\w+$"),
    "provided": re.compile(r"^\S+$"),
}


class BlueprintError(Exception):
    """A blueprint that does not exist or cannot be written; the message is meant for the user."""


@dataclass(frozen=True, slots=True)
class Blueprint:
    name: str
    runtime: str
    handler: str
    description: str
    event: str = "event.json"
    package: str = "."
    memory: int | None = None
    timeout: int | None = None
    executable: tuple[str, ...] = ()
    build: str | None = None
    install: str = ""

    @property
    def family(self) -> str:
        """``python``, ``nodejs``, ``ruby``, ``java``, ``dotnet`` or ``provided``."""
        return runtime_family(self.runtime)

    def files(self) -> list[str]:
        """The blueprint's files (POSIX paths relative to its directory), the manifest excepted."""
        return sorted(rel for rel, _ in _walk(_template_dir(self.name)))

    def read(self, rel: str) -> bytes:
        node = _template_dir(self.name)
        for part in rel.split("/"):
            node = node.joinpath(part)
        return node.read_bytes()

    def sample_event(self) -> Any:
        return json.loads(self.read(self.event))


def runtime_family(runtime: str) -> str:
    match = re.match(r"^(python|nodejs|ruby|java|dotnet|provided)", runtime)
    return match.group(1) if match else runtime


def _templates() -> Traversable:
    return resources.files(__name__).joinpath(TEMPLATES)


def _template_dir(name: str) -> Traversable:
    return _templates().joinpath(name)


def _walk(node: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    found: list[tuple[str, Traversable]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name in SKIPPED or child.name.endswith(SKIPPED_SUFFIXES):
            continue
        rel = f"{prefix}{child.name}"
        if child.is_dir():
            found.extend(_walk(child, rel + "/"))
        elif child.is_file():
            found.append((rel, child))
    return found


def _str(raw: dict[str, Any], key: str, name: str, default: str | None = None) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise BlueprintError(f"blueprint {name}: {MANIFEST} needs a non-empty string {key!r}")
    return value


def _int(raw: dict[str, Any], key: str, name: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BlueprintError(f"blueprint {name}: {MANIFEST} {key!r} must be a positive integer")
    return value


def parse_manifest(name: str, text: str | bytes) -> Blueprint:
    """A blueprint from its manifest's text; raises BlueprintError for a malformed one."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise BlueprintError(f"blueprint {name}: {MANIFEST} is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise BlueprintError(f"blueprint {name}: {MANIFEST} must be a JSON object")
    known = {
        "runtime", "handler", "description", "event", "package", "memory", "timeout", "executable", "build",
        "install",
    }  # fmt: skip
    unknown = sorted(set(raw) - known)
    if unknown:
        raise BlueprintError(f"blueprint {name}: unknown {MANIFEST} keys {unknown}")
    executable = raw.get("executable", [])
    if not isinstance(executable, list) or not all(isinstance(e, str) and e for e in executable):
        raise BlueprintError(f"blueprint {name}: {MANIFEST} 'executable' must be a list of file names")
    build = raw.get("build")
    if build is not None and build not in BUILDS:
        raise BlueprintError(f"blueprint {name}: {MANIFEST} 'build' must be one of {list(BUILDS)}")
    description = _str(raw, "description", name)
    if "\n" in description:
        raise BlueprintError(f"blueprint {name}: the description must be one line")
    return Blueprint(
        name=name,
        runtime=_str(raw, "runtime", name),
        handler=_str(raw, "handler", name),
        description=description,
        event=_str(raw, "event", name, "event.json"),
        package=_str(raw, "package", name, "."),
        memory=_int(raw, "memory", name),
        timeout=_int(raw, "timeout", name),
        executable=tuple(executable),
        build=build,
        install=str(raw.get("install", "")),
    )


def catalogue() -> list[Blueprint]:
    """Every blueprint, by name."""
    found = []
    for node in sorted(_templates().iterdir(), key=lambda c: c.name):
        manifest = node.joinpath(MANIFEST)
        if node.is_dir() and manifest.is_file():
            found.append(parse_manifest(node.name, manifest.read_bytes()))
    return found


def names() -> list[str]:
    return [b.name for b in catalogue()]


def get(name: str) -> Blueprint:
    for blueprint in catalogue():
        if blueprint.name == name:
            return blueprint
    raise BlueprintError(f"no blueprint named {name!r}; blueprints: {', '.join(names())}")


def check(blueprint: Blueprint) -> list[str]:
    """What is wrong with a blueprint (an empty list when nothing): the handler's shape for its runtime,
    the sample event, the files the manifest names."""
    problems: list[str] = []
    if not _NAME_RE.match(blueprint.name):
        problems.append(f"name {blueprint.name!r} is not lower-case letters, digits and dashes")
    pattern = _HANDLER_RES.get(blueprint.family)
    if pattern is None:
        problems.append(f"unknown runtime family of {blueprint.runtime!r}")
    elif not pattern.match(blueprint.handler):
        problems.append(f"handler {blueprint.handler!r} is not a {blueprint.family} handler")
    files = set(blueprint.files())
    if blueprint.event not in files:
        problems.append(f"no sample event file {blueprint.event}")
    else:
        try:
            blueprint.sample_event()
        except ValueError as exc:
            problems.append(f"{blueprint.event} is not JSON: {exc}")
    problems.extend(f"'executable' names {e}, which it lacks" for e in blueprint.executable if e not in files)
    if "README.md" not in files:
        problems.append("no README.md")
    return problems


# ---- writing -------------------------------------------------------------------------------------------


def write(blueprint: Blueprint, target: Path, *, force: bool = False) -> list[Path]:
    """Copies the blueprint's files into ``target`` (created when missing) and returns their paths.

    A non-empty ``target`` is refused unless ``force``: then the blueprint's files overwrite files of the
    same name and every other file is left alone."""
    if target.exists() and not target.is_dir():
        raise BlueprintError(f"{target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise BlueprintError(
            f"{target} is not empty; choose an empty directory or pass --force to write into it"
        )
    written: list[Path] = []
    for rel, node in _walk(_template_dir(blueprint.name)):
        path = target.joinpath(*rel.split("/"))
        if path.is_dir() and not path.is_symlink():
            raise BlueprintError(f"{path} is a directory; the blueprint has a file there")
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            path.unlink()  # write a file of our own, never through a link
        path.write_bytes(node.read_bytes())
        os.chmod(path, 0o755 if rel in blueprint.executable else 0o644)
        written.append(path)
    return written


def valid_function_name(name: str) -> bool:
    return _FUNCTION_NAME_RE.match(name) is not None


def default_function_name(blueprint: Blueprint, target: Path) -> str:
    """The directory's name when it is a valid function name, else the blueprint's."""
    candidate = target.resolve().name
    return candidate if valid_function_name(candidate) else blueprint.name


def package_path(blueprint: Blueprint, target: Path) -> Path:
    """What ``shoal deploy`` uploads: the written directory, or its build output."""
    return target if blueprint.package == "." else target / blueprint.package


def deploy_command(blueprint: Blueprint, target: Path, function_name: str) -> list[str]:
    argv = [
        "shoal", "deploy", str(package_path(blueprint, target)),
        "--name", function_name, "--runtime", blueprint.runtime, "--handler", blueprint.handler,
    ]  # fmt: skip
    if blueprint.memory is not None:
        argv += ["--memory", str(blueprint.memory)]
    if blueprint.timeout is not None:
        argv += ["--timeout", str(blueprint.timeout)]
    return argv


def invoke_command(blueprint: Blueprint, target: Path, function_name: str) -> list[str]:
    return ["shoal", "invoke", function_name, "@" + str(target / blueprint.event)]


def shell_line(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


# ---- building ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuildResult:
    built: bool  # the package is ready to deploy
    command: list[str]  # what was run, or what to run by hand (run in the written directory)
    message: str  # one line for the user: what happened, or why nothing was built


def java_api_sources() -> Path:
    """The aws-lambda-java-core API (``com.amazonaws.services.lambda.runtime``) as Java sources: the very
    classes Shoal's Java runtime puts on a function's class path."""
    from shoal.runtimes import java

    return java.SOURCES / "api"


def find_javac(release: int = JAVA_RELEASE) -> Path | None:
    """A ``javac`` that can compile for Java ``release``: of the installed JDKs that have one, the same major
    version, else the oldest newer one; else a ``javac`` on ``PATH``."""
    from shoal.runtimes import java

    candidates = sorted(
        (jvm for jvm in java.installed() if jvm.javac is not None and jvm.major >= release),
        key=lambda jvm: (jvm.major != release, jvm.major),
    )
    if candidates:
        return candidates[0].javac
    on_path = shutil.which("javac")
    if on_path is None:
        return None
    jvm = java.probe(Path(os.path.realpath(on_path)).parent.parent)
    return Path(on_path) if jvm is None or jvm.major >= release else None


def javac_command(target: Path, javac: str | Path = "javac") -> list[str]:
    """The javac run that builds the Java blueprint in ``target``: its sources under src/main/java into
    build/, against the API sources (``-implicit:none``: the API's classes come from the runtime)."""
    sources = sorted(p.relative_to(target).as_posix() for p in (target / JAVA_SOURCES).rglob("*.java"))
    return [
        str(javac),
        "--release", str(JAVA_RELEASE),
        "-encoding", "UTF-8",
        "-implicit:none",
        "-sourcepath", f"{JAVA_SOURCES}{os.pathsep}{java_api_sources()}",
        "-d", JAVA_BUILD_DIR,
        *sources,
    ]  # fmt: skip


def mcs_command(mcs: str = "mcs", references: list[Path] | None = None) -> list[str]:
    """The mcs run that builds the C# blueprint into publish/, against the API assemblies Shoal's .NET
    runtime provides (docs/runtimes/dotnet.md)."""
    refs = [f"-r:{path}" for path in references or []] or ["-r:Amazon.Lambda.Core.dll"]
    return [mcs, "-langversion:7", "-target:library", "-out:publish/HelloWorld.dll", *refs, "Function.cs"]


def _dotnet_api_assemblies() -> list[Path] | None:
    from shoal.runtimes import dotnet

    runtime = dotnet.FAMILY.discover({}).get("dotnet8")
    return None if runtime is None else dotnet.api_assemblies(runtime)


def build(blueprint: Blueprint, target: Path, *, run: bool = True) -> BuildResult | None:
    """Builds the written blueprint in ``target`` when it needs building (None when it does not).

    Java is compiled when a suitable ``javac`` is found; .NET is never built here (``dotnet publish``
    fetches NuGet packages): the result then carries the command to run by hand."""
    if blueprint.build == "javac":
        javac = find_javac() if run else None
        if javac is None:
            why = "not asked to" if not run else f"no javac for Java {JAVA_RELEASE} or newer found"
            if run and blueprint.install:
                why += f"; install {blueprint.install}"
            return BuildResult(False, javac_command(target), why)
        command = javac_command(target, javac)
        out_dir = target / JAVA_BUILD_DIR
        if out_dir.is_dir():
            shutil.rmtree(out_dir)  # no stale classes from an earlier build
        try:
            done = subprocess.run(
                command, cwd=target, capture_output=True, text=True, timeout=JAVAC_TIMEOUT, check=False
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise BlueprintError(f"{javac} failed to run: {exc}") from None
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip()[-2000:]
            raise BlueprintError(f"javac failed ({done.returncode}): {detail}")
        return BuildResult(True, command, f"compiled with {javac} into {out_dir}")
    if blueprint.build == "mcs":
        mcs = shutil.which("mcs") if run else None
        references = _dotnet_api_assemblies() if mcs else None
        if mcs is None or references is None:
            why = "not asked to" if not run else "no mcs or no dotnet8 runtime on this host"
            if run and blueprint.install:
                why += f"; install {blueprint.install}"
            return BuildResult(False, mcs_command(references=references), why)
        command = mcs_command(mcs, references)
        (target / "publish").mkdir(exist_ok=True)
        done = subprocess.run(
            command, cwd=target, capture_output=True, text=True, timeout=JAVAC_TIMEOUT, check=False
        )
        if done.returncode != 0:
            raise BlueprintError(
                f"mcs failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}"
            )
        return BuildResult(True, command, f"compiled with {mcs} into {target / 'publish'}")
    return None

"""The runtime registry: which runtime ids this host can run, and how to start each one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from shoal.core.errors import InvalidParameterValueException

Entrypoint = Callable[[Path, Path | None], str | None]
"""Given the host paths of the task root and of ``/opt`` (layers), the sandbox path of the program to run
(with placeholders), or None when there is none: the environment then fails INIT with
``Runtime.InvalidEntrypoint``. Used by custom runtimes, whose program is the function's ``bootstrap``."""


@dataclass(frozen=True, slots=True)
class Runtime:
    """One runnable runtime id on this host.

    ``executable``, ``bootstrap_argv`` and ``env`` values may hold the placeholders ``{runtime_dir}``
    (Shoal's bootstrap directory, ``/var/runtime`` inside the sandbox), ``{task_root}`` (``/var/task``) and
    ``{opt}`` (``/opt``); each sandbox backend says what they are in its view.
    """

    id: str  # e.g. "python3.12"
    family: str  # e.g. "python"
    executable: str  # the real interpreter binary (never a shell shim), or a placeholder path
    version: str  # e.g. "3.12.1"
    bootstrap_dir: Path  # host directory holding the bootstrap program, bound at /var/runtime
    bootstrap_argv: tuple[str, ...]  # argv after the executable
    env: Mapping[str, str] = field(default_factory=dict)  # runtime-specific environment (NODE_PATH …)
    host_paths: tuple[Path, ...] = ()  # host directories the runtime needs visible (interpreter prefix …)
    entrypoint: Entrypoint | None = None
    managed: bool = True  # False for provided* (custom) runtimes: no AWS_EXECUTION_ENV
    preload: Path | None = None  # a bootstrap a fork-server of ``executable`` can import ahead of time
    # the bootstrap can be started before its function is known and specialised later (``Standby``)
    prestart: bool = False
    standby_flags: tuple[str, ...] = ()  # what a pre-started one is started with after ``executable``, too
    # a function with a variable of one of these prefixes needs its runtime started with it (read only at
    # start-up: NODE_OPTIONS, LD_PRELOAD …), not specialised
    start_time_variables: tuple[str, ...] = ()

    @property
    def runtime_version(self) -> str:
        """As on the ``INIT_START`` line: ``python:3.12.v1``."""
        major_minor = ".".join(self.version.split(".")[:2])
        patch = self.version.split(".")[2] if self.version.count(".") >= 2 else "0"
        return f"{self.family}:{major_minor}.v{patch}"

    def argv(self, places: Mapping[str, str], executable: str | None = None) -> list[str]:
        return [fill(executable or self.executable, places), *(fill(a, places) for a in self.bootstrap_argv)]

    def environment(self, places: Mapping[str, str]) -> dict[str, str]:
        return {k: fill(v, places) for k, v in self.env.items()}


def fill(template: str, places: Mapping[str, str]) -> str:
    for key, value in places.items():
        template = template.replace("{" + key + "}", value)
    return template


class RuntimeFamily(Protocol):
    """A language family (python, nodejs, …): finds the runtimes of that family this host can run."""

    name: str

    def discover(self, configured: Mapping[str, str]) -> dict[str, Runtime]:
        """``configured`` maps runtime ids to interpreter paths from the ``runtimes`` setting."""


class RuntimeRegistry:
    def __init__(self) -> None:
        self._families: list[RuntimeFamily] = []
        self._runtimes: dict[str, Runtime] = {}

    def register(self, family: RuntimeFamily) -> None:
        self._families.append(family)

    def discover(self, configured: Mapping[str, str]) -> None:
        found: dict[str, Runtime] = {}
        for family in self._families:
            found.update(family.discover(configured))
        self._runtimes = found

    def add(self, runtime: Runtime) -> None:
        self._runtimes[runtime.id] = runtime

    @property
    def ids(self) -> list[str]:
        return sorted(self._runtimes)

    def get(self, runtime_id: str) -> Runtime | None:
        return self._runtimes.get(runtime_id)

    def require(self, runtime_id: str) -> Runtime:
        runtime = self._runtimes.get(runtime_id)
        if runtime is None:
            offered = ", ".join(self.ids) or "none"
            raise InvalidParameterValueException(
                f"The runtime parameter of {runtime_id} is not available on this Shoal host. "
                f"Runtimes this host offers: {offered}. Install the interpreter or map it with the "
                "'runtimes' setting (SHOAL_RUNTIMES)."
            )
        return runtime

"""The runtime registry: which runtime ids this host can run, and how to start each one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from shoal.core.errors import InvalidParameterValueException


@dataclass(frozen=True, slots=True)
class Runtime:
    """One runnable runtime id on this host."""

    id: str  # e.g. "python3.12"
    family: str  # e.g. "python"
    executable: str  # the real interpreter binary (never a shell shim)
    version: str  # e.g. "3.12.1"
    bootstrap_dir: Path  # host directory holding the bootstrap program, bound at /var/runtime
    bootstrap_argv: tuple[
        str, ...
    ]  # argv after the executable; "{runtime_dir}" is replaced by its sandbox path
    env: Mapping[str, str] = field(default_factory=dict)  # runtime-specific environment (PYTHONPATH …)

    @property
    def runtime_version(self) -> str:
        """As on the ``INIT_START`` line: ``python:3.12.v1``."""
        major_minor = ".".join(self.version.split(".")[:2])
        patch = self.version.split(".")[2] if self.version.count(".") >= 2 else "0"
        return f"{self.family}:{major_minor}.v{patch}"

    def argv(self, runtime_dir: str) -> list[str]:
        return [self.executable, *(a.replace("{runtime_dir}", runtime_dir) for a in self.bootstrap_argv)]


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

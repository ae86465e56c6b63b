"""The runtime families Shoal ships. Each module named here defines ``FAMILY`` (a ``RuntimeFamily``); they
register through the same ``RuntimeRegistry.register`` a plugin would use."""

from __future__ import annotations

import importlib

from shoal.runtimes.registry import RuntimeFamily, RuntimeRegistry

MODULES = ("python", "nodejs", "java", "ruby", "dotnet", "custom")


def families() -> list[RuntimeFamily]:
    found = []
    for name in MODULES:
        try:
            module = importlib.import_module(f"shoal.runtimes.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"shoal.runtimes.{name}":
                raise
            continue
        found.append(module.FAMILY)
    return found


def registry() -> RuntimeRegistry:
    reg = RuntimeRegistry()
    for family in families():
        reg.register(family)
    return reg

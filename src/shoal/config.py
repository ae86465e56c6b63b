"""The one settings table.

Each :class:`Setting` drives a field of :class:`Config`, an environment variable ``SHOAL_<NAME>``, a flag
``--<name>`` of ``shoal server`` and a row of ``docs/settings.md`` (a test fails when the doc falls behind).
Precedence: CLI flag > environment variable > default.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _mapping(value: str) -> dict[str, str]:
    """``a=x,b=y`` → ``{"a": "x", "b": "y"}``."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        key, sep, val = part.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise ValueError(f"expected KEY=VALUE pairs separated by commas, got {part!r}")
        out[key.strip()] = val.strip()
    return out


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[str], Any]
    help: str
    metavar: str = "VALUE"

    @property
    def env_var(self) -> str:
        return "SHOAL_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "host", "127.0.0.1", str, "Address the API listens on. Keep it on loopback unless auth is on.", "HOST"
    ),
    Setting("port", 9000, int, "TCP port of the API (control plane, invoke, logs).", "PORT"),
    Setting("data_dir", ".shoal", str, "Directory for the SQLite database, code packages and logs.", "DIR"),
    Setting("region", "us-east-1", str, "Region in ARNs and in AWS_REGION inside functions.", "REGION"),
    Setting(
        "account_id", "123456789012", str, "Account id of the embedded single account (12 digits).", "ID"
    ),
    Setting(
        "credentials",
        "",
        str,
        "File of access keys, one 'ACCESS_KEY_ID SECRET_ACCESS_KEY ACCOUNT_ID' a line; clients must sign "
        "with one of them (AWS SigV4). Empty: auth off, any or no credentials are accepted (docs/auth.md).",
        "FILE",
    ),
    Setting(
        "sandbox",
        "auto",
        str,
        "Sandbox backend: auto (namespace where the host allows, else process), namespace or process.",
        "NAME",
    ),
    Setting(
        "runtimes",
        {},
        _mapping,
        "Interpreter per runtime id, e.g. python3.12=/usr/bin/python3.12 (comma-separated). Runtimes not "
        "named are discovered on PATH and in pyenv.",
        "ID=PATH,...",
    ),
    Setting(
        "uid_range",
        "100000-165535",
        str,
        "Unprivileged uids given to environments (namespace sandbox), one per live environment.",
        "FIRST-LAST",
    ),
    Setting(
        "function_network",
        True,
        _bool,
        "Whether functions may open network connections (as on AWS).",
        "BOOL",
    ),
    Setting(
        "cpu_floor",
        0.1,
        float,
        "Smallest CPU share (in vCPUs) of an environment after INIT; above it CPU follows memory, "
        "1,769 MB = 1 vCPU.",
        "VCPUS",
    ),
    Setting(
        "fork_server",
        True,
        _bool,
        "Start Python environments from a per-interpreter fork-server that has imported the bootstrap "
        "(namespace sandbox).",
        "BOOL",
    ),
    Setting(
        "prestart",
        True,
        _bool,
        "Keep generic Node.js and Java runtime processes started ahead of need and specialise one with the "
        "function's code and environment on a cold start (namespace sandbox).",
        "BOOL",
    ),
    Setting(
        "stem_cells",
        2,
        int,
        "Environments of each kind prepared ahead of need (namespaces, cgroup, shared root) and "
        "specialised on a cold start, and copies of each SnapStart snapshot forked ahead "
        "(namespace sandbox).",
        "N",
    ),
    Setting("warm_cgroups", 16, int, "Cgroups created ahead of need at start-up (namespace sandbox).", "N"),
    Setting(
        "cgroup_favordynmods",
        True,
        _bool,
        "Ask the kernel (Linux 6.0+) to favour moving processes between cgroups over forks and exits, "
        "as its favordynmods mount option does: a stem's cgroup join no longer waits out an RCU grace "
        "period (10-25 ms) after the host was idle; host-wide, and on 6.18+ until reboot "
        "(docs/sandbox.md; namespace sandbox).",
        "BOOL",
    ),
    Setting(
        "account_concurrency",
        1000,
        int,
        "Concurrent executions an account may run (AWS's default quota is 1,000).",
        "N",
    ),
    Setting(
        "scaling_rate",
        1000,
        int,
        "New execution environments one function may get per 10 seconds (AWS: 1,000).",
        "N",
    ),
    Setting(
        "host_memory_mb",
        0,
        int,
        "Memory that execution environments may reserve on this host, all together (MemorySize each); "
        "0 means 80% of the host's memory. Past it, idle environments are reclaimed, then invocations "
        "are throttled.",
        "MB",
    ),
    Setting("max_starting", 64, int, "Execution environments that may be starting at the same time.", "N"),
    Setting(
        "idle_ttl",
        300.0,
        float,
        "Seconds an idle execution environment is kept warm before reaping.",
        "SECONDS",
    ),
    Setting(
        "init_timeout", 10.0, float, "Seconds the INIT phase of an environment may take (AWS: 10).", "SECONDS"
    ),
    Setting(
        "log_group_max_bytes",
        64 * 1024 * 1024,
        int,
        "Size bound of one log group on disk; its oldest events go past it (an eighth of it at a time).",
        "BYTES",
    ),
    Setting(
        "log_flush_interval", 0.2, float, "Seconds between flushes of buffered log lines to disk.", "SECONDS"
    ),
    Setting("log_level", "info", str, "Server log level: debug, info, warning, error.", "LEVEL"),
)

_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    data_dir: str
    region: str
    account_id: str
    credentials: str
    sandbox: str
    runtimes: dict[str, str]
    uid_range: str
    function_network: bool
    cpu_floor: float
    fork_server: bool
    prestart: bool
    stem_cells: int
    warm_cgroups: int
    cgroup_favordynmods: bool
    account_concurrency: int
    scaling_rate: int
    host_memory_mb: int
    max_starting: int
    idle_ttl: float
    init_timeout: float
    log_group_max_bytes: int
    log_flush_interval: float
    log_level: str

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()

    @property
    def memory_budget_mb(self) -> int:
        if self.host_memory_mb > 0:
            return self.host_memory_mb
        try:
            with open("/proc/meminfo") as fh:
                total_kb = int(fh.readline().split()[1])
        except (OSError, ValueError, IndexError):
            return 4096
        return int(total_kb / 1024 * 0.8)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Config:
        """Build a Config from defaults, then ``SHOAL_*`` variables, then explicit overrides (CLI flags)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for s in SETTINGS:
            value = s.default
            if s.env_var in env:
                try:
                    value = s.parse(env[s.env_var])
                except ValueError as exc:
                    raise ConfigError(f"{s.env_var}: {exc}") from exc
            values[s.name] = value
        for key, value in (overrides or {}).items():
            if key not in _BY_NAME:
                raise ConfigError(f"unknown setting {key!r}")
            if value is not None:
                values[key] = value
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        if self.sandbox not in ("auto", "namespace", "process"):
            raise ConfigError(f"sandbox must be auto, namespace or process, not {self.sandbox!r}")
        if not (len(self.account_id) == 12 and self.account_id.isdigit()):
            raise ConfigError(f"account_id must be 12 digits, not {self.account_id!r}")
        first, _, last = self.uid_range.partition("-")
        if not (first.isdigit() and last.isdigit() and 0 < int(first) <= int(last)):
            raise ConfigError(f"uid_range must be FIRST-LAST with 0 < FIRST <= LAST, not {self.uid_range!r}")
        if not 0 < self.cpu_floor <= 64:
            raise ConfigError(f"cpu_floor must be a positive number of vCPUs, not {self.cpu_floor}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be 1-65535, not {self.port}")


class ConfigError(ValueError):
    """A setting has a value Shoal cannot use; the message names it."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per setting to ``shoal server``."""
    for s in SETTINGS:
        parser.add_argument(
            s.flag,
            dest=s.name,
            metavar=s.metavar,
            type=s.parse,
            default=None,
            help=f"{s.help} [env {s.env_var}; default {_show(s.default)}]".replace("%", "%%"),
        )


def from_arguments(args: argparse.Namespace) -> Config:
    return Config.load({f.name: getattr(args, f.name, None) for f in fields(Config)})


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "(auto)"
    return str(value)


def settings_markdown() -> str:
    """The body of ``docs/settings.md``."""
    lines = [
        "# Settings",
        "",
        "Every setting can be given as a flag of `shoal server` or as an environment variable; "
        "the flag wins.",
        "This page is generated from `src/shoal/config.py` (`python -m shoal.config > docs/settings.md`).",
        "",
        "| Setting | Flag | Environment variable | Default | Meaning |",
        "|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        lines.append(
            f"| `{s.name}` | `{s.flag} {s.metavar}` | `{s.env_var}` | `{_show(s.default)}` | {s.help} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(settings_markdown(), end="")

"""Environment pools per function version: warm reuse, replacement on change, idle reaping."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from shoal.core.errors import TooManyRequestsException
from shoal.core.tasks import Supervisor
from shoal.core.types import FunctionConfig
from shoal.environments.environment import Environment

log = logging.getLogger("shoal.environments")

Key = tuple[str, str, str]


class Factory(Protocol):
    def __call__(self, fn: FunctionConfig, initialization_type: str = ...) -> Environment: ...


def _key(config: FunctionConfig) -> Key:
    return (config.account_id, config.name, config.version)


class TokenBucket:
    """Lambda's scaling rate: up to ``capacity`` new environments at once, refilled at ``rate`` per second,
    unused capacity not accumulating beyond ``capacity``."""

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity, self.rate = capacity, rate
        self.tokens, self.stamp = capacity, now

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass(frozen=True)
class Limits:
    """How fast and how far environments may be created (spec §7; the host's own capacity)."""

    scale_per_10s: int = 1000  # per function, as AWS since Nov 2023
    memory_budget_mb: int = 1 << 40  # memory environments may reserve on this host, all together
    max_starting: int = 64  # environments starting at the same time


class EnvironmentPool:
    """Hands out one environment per invocation: the most recently used idle one, or a new one."""

    def __init__(
        self, factory: Factory, supervisor: Supervisor, *, idle_ttl: float, limits: Limits | None = None
    ) -> None:
        self._factory = factory
        self._supervisor = supervisor
        self.idle_ttl = idle_ttl
        self.limits = limits or Limits()
        self._idle: dict[Key, list[Environment]] = {}
        self._live: set[Environment] = set()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._starting = asyncio.Semaphore(self.limits.max_starting)
        self.reserved_mb = 0  # memory of live environments
        self.created = 0  # environments started (cold starts)
        self.throttled = 0
        # provisioned concurrency: per version, the target and the environments kept for it
        self._prov_target: dict[Key, int] = {}
        self._prov: dict[Key, list[Environment]] = {}
        self._prov_failed: dict[Key, str] = {}
        self._filling: set[Key] = set()
        self.provisioned_invocations = 0
        self.spillover_invocations = 0

    @property
    def live(self) -> int:
        return len(self._live)

    def idle_count(self, config: FunctionConfig | None = None) -> int:
        if config is not None:
            return len(self._idle.get(_key(config), ()))
        return sum(len(v) for v in self._idle.values())

    async def acquire(self, config: FunctionConfig) -> Environment:
        key = _key(config)
        if key in self._prov:
            for env in self._prov[key]:
                if (
                    not env.busy
                    and env.alive
                    and not env.stale
                    and env.config.revision_id == config.revision_id
                ):
                    env.busy = True
                    self.provisioned_invocations += 1
                    return env
            self.spillover_invocations += 1
        idle = self._idle.get(key)
        while idle:
            env = idle.pop()
            if env.alive and not env.stale and env.config.revision_id == config.revision_id:
                env.busy = True
                return env
            self._retire(env)
        self._admit(config)
        env = self._factory(config)
        env.busy = True
        self._live.add(env)
        self.reserved_mb += config.memory_size
        self.created += 1
        try:
            async with self._starting:  # bounded, never held across anything but the start itself
                await env.start()
        except BaseException:
            self._retire(env)
            raise
        return env

    def _admit(self, config: FunctionConfig) -> None:
        """May one more environment of this function be created now? Throttle cleanly if not."""
        now = time.monotonic()
        key = (config.account_id, config.name)
        bucket = self._buckets.get(key)
        if bucket is None:
            rate = self.limits.scale_per_10s / 10.0
            bucket = self._buckets[key] = TokenBucket(self.limits.scale_per_10s, rate, now)
        if not bucket.take(now):
            self.throttled += 1
            raise TooManyRequestsException.throttled("ConcurrentInvocationLimitExceeded")
        while self.reserved_mb + config.memory_size > self.limits.memory_budget_mb:
            victim = self._oldest_idle()
            if victim is None:  # the host is full of busy environments: throttle, do not overcommit
                bucket.tokens += 1
                self.throttled += 1
                raise TooManyRequestsException.throttled("ConcurrentInvocationLimitExceeded")
            self._retire(victim)

    def _oldest_idle(self) -> Environment | None:
        candidates = [env for envs in self._idle.values() for env in envs]
        return min(candidates, key=lambda e: e.idle_since, default=None)

    def release(self, env: Environment) -> None:
        env.busy = False
        if env.provisioned:
            if not env.alive or env.stale:
                self._retire(env)
                self._refill(_key(env.config), env.config)
            return
        if not env.alive or env.stale:
            self._retire(env)
            return
        env.idle_since = time.monotonic()
        self._idle.setdefault(_key(env.config), []).append(env)

    def on_config_change(self, config: FunctionConfig, deleted: bool) -> None:
        """A version changed or went away: its environments must not serve again."""
        key = _key(config)
        for env in list(self._live):
            if _key(env.config) == key and (deleted or env.config.revision_id != config.revision_id):
                env.stale = True
        for env in self._idle.pop(key, []):
            if env.stale:
                self._retire(env)
            else:
                self._idle.setdefault(key, []).append(env)

    def _retire(self, env: Environment) -> None:
        prov = self._prov.get(_key(env.config))
        if prov is not None and env in prov:
            prov.remove(env)
        if env in self._live:
            self.reserved_mb -= env.config.memory_size
        self._live.discard(env)
        idle = self._idle.get(_key(env.config))
        if idle and env in idle:
            idle.remove(env)
        self._supervisor.spawn(env.shutdown(), f"shutdown-{env.id}")

    # ---- provisioned concurrency -------------------------------------------------------------------------

    def set_provisioned(self, config: FunctionConfig, count: int) -> None:
        """Keep ``count`` initialised environments of this version (0: none), started in the background."""
        key = _key(config)
        if count <= 0:
            self._prov_target.pop(key, None)
            self._prov_failed.pop(key, None)
            for env in list(self._prov.pop(key, [])):
                if env.busy:
                    env.stale = True  # retired when released
                else:
                    self._retire(env)
            return
        self._prov_target[key] = count
        envs = self._prov.setdefault(key, [])
        for env in [e for e in envs if not e.busy][: max(0, len(envs) - count)]:
            self._retire(env)
        self._refill(key, config)

    def provisioned_status(self, config: FunctionConfig) -> tuple[int, int, str | None]:
        """(requested, allocated, failure reason) for this version."""
        key = _key(config)
        allocated = sum(1 for e in self._prov.get(key, []) if e.alive and e.init_ms is not None)
        return self._prov_target.get(key, 0), allocated, self._prov_failed.get(key)

    def _refill(self, key: Key, config: FunctionConfig) -> None:
        if key in self._filling or key not in self._prov_target:
            return
        self._filling.add(key)
        self._supervisor.spawn(self._fill(key, config), f"provision-{config.name}:{config.version}")

    async def _fill(self, key: Key, config: FunctionConfig) -> None:
        try:
            while key in self._prov_target and len(self._prov.get(key, [])) < self._prov_target[key]:
                env = self._factory(config, "provisioned-concurrency")
                self._prov.setdefault(key, []).append(env)
                self._live.add(env)
                self.reserved_mb += config.memory_size
                self.created += 1
                try:
                    async with self._starting:
                        await env.start()
                except BaseException:
                    self._retire(env)
                    raise
                if not env.alive:  # INIT failed: provisioning fails, as on AWS
                    self._prov_failed[key] = "FUNCTION_ERROR_INIT_FAILURE"
                    self._retire(env)
                    return
                self._prov_failed.pop(key, None)
        finally:
            self._filling.discard(key)

    def reap(self, now: float | None = None) -> int:
        """Retire environments idle longer than the TTL; returns how many."""
        now = time.monotonic() if now is None else now
        reaped = 0
        for key in list(self._idle):
            envs = self._idle.pop(key)
            keep = [e for e in envs if e.alive and now - e.idle_since < self.idle_ttl]
            if keep:
                self._idle[key] = keep
            for env in envs:
                if env not in keep:
                    self._retire(env)
                    reaped += 1
        return reaped

    async def reap_loop(self) -> None:
        interval = max(0.05, min(self.idle_ttl / 4, 5.0))
        while True:
            await asyncio.sleep(interval)
            n = self.reap()
            if n:
                log.debug("reaped %d idle environments", n)

    async def close(self) -> None:
        envs = list(self._live)
        self._live.clear()
        self._idle.clear()
        self.reserved_mb = 0
        await asyncio.gather(*(e.shutdown() for e in envs), return_exceptions=True)

"""SnapStart: one snapshot per published version, and new environments forked from it.

A version published with ``SnapStart.ApplyOn = PublishedVersions`` gets a *snapshot*: an ordinary environment
started with ``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`` that runs INIT and the function's before-snapshot
hooks once, then waits on ``restore/next``. Every new environment of the version is then a copy forked from
it (``Environment._restore``): it skips INIT, gets its own uid, ``/tmp``, cgroup and Runtime API
(``sandbox/forks.py``), re-seeds ``random``, runs the after-restore hooks and logs ``RESTORE_START`` /
``RESTORE_REPORT`` where an on-demand environment logs ``INIT_START`` / ``INIT_REPORT``.

The snapshot is made when the version is published (``prime``, in the background; at server start for the
versions published before) or on its first cold start, whichever comes first, and kept, frozen between forks,
until the version changes or goes away or the server stops. Where copies cannot be
isolated (the process sandbox; functions without network, whose namespace the server's socket is not in) or
the runtime cannot fork (only Shoal's Python bootstrap can), the version's environments run INIT as on-demand
ones do.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

from shoal.core.tasks import Supervisor
from shoal.core.types import FunctionConfig
from shoal.environments.environment import Copy, Environment

log = logging.getLogger("shoal.environments")

Key = tuple[str, str, str]
SNAPSHOT_RUNTIMES = "python"  # runtime families whose bootstrap forks copies


def _key(config: FunctionConfig) -> Key:
    return (config.account_id, config.name, config.version)


def applies(config: FunctionConfig) -> bool:
    """Whether the version's new environments come from a snapshot (a published SnapStart version)."""
    return config.snap_start_apply_on == "PublishedVersions" and config.version != "$LATEST"


class Snapshots:
    """The snapshot of each SnapStart version (see the module docstring)."""

    def __init__(
        self,
        make: Callable[[FunctionConfig], Environment],
        supervisor: Supervisor,
        spares: int = 2,
        eager: Callable[[FunctionConfig], bool] | None = None,
    ) -> None:
        self._make = make  # an environment of the version, initialization type "snap-start"
        self._supervisor = supervisor
        self._eager = eager  # whether a version just published gets its snapshot at once
        self._snapshots: dict[Key, tuple[Environment, asyncio.Task[None]]] = {}
        # copies forked ahead of need, per version, each in its own sandbox waiting for its variables: a
        # restore then skips the fork and the cgroup move (an RCU grace period, ~10 ms on an idle host)
        self.spares = spares
        self._spares: dict[Key, list[Copy]] = {}
        self._making: dict[Key, int] = {}

    def covers(self, config: FunctionConfig, family: str, can_fork: bool) -> bool:
        return can_fork and family in SNAPSHOT_RUNTIMES and applies(config)

    async def snapshot_of(self, config: FunctionConfig) -> Environment | None:
        key = _key(config)
        entry = self._snapshots.get(key)
        if entry is not None:
            env, started = entry
            usable = env.config.revision_id == config.revision_id and (
                not started.done() or env.alive or env.init_failed
            )
            if not usable:
                self._retire(key)
                entry = None
        if entry is None:
            env = self._make(config)
            started = asyncio.get_running_loop().create_task(env.start(), name=f"snapshot-{env.id}")
            entry = self._snapshots[key] = (env, started)
        env, started = entry
        await asyncio.shield(started)
        return env

    def take_spare(self, config: FunctionConfig) -> Copy | None:
        spares = self._spares.get(_key(config), [])
        while spares:
            copy = spares.pop()
            if copy.process.returncode is None:
                return copy
            self._discard(copy)
        return None

    def replenish(self, config: FunctionConfig, snapshot: Environment) -> None:
        key = _key(config)
        missing = self.spares - len(self._spares.get(key, [])) - self._making.get(key, 0)
        for _ in range(max(0, missing)):
            self._making[key] = self._making.get(key, 0) + 1
            self._supervisor.spawn(self._make_spare(key, config, snapshot), "snapshot-spare")

    async def _make_spare(self, key: Key, config: FunctionConfig, snapshot: Environment) -> None:
        try:
            work_dir = snapshot.work_dir.with_name(uuid.uuid4().hex)
            copy = await snapshot.fork_copy(config.memory_size, config.ephemeral_storage, work_dir)
        except Exception as exc:  # the next restores fork for themselves
            log.warning("a spare copy of %s:%s could not be made: %s", config.name, config.version, exc)
            return
        finally:
            self._making[key] -= 1
        entry = self._snapshots.get(key)
        if entry is None or entry[0] is not snapshot:  # the snapshot went away meanwhile
            self._discard(copy)
            return
        self._spares.setdefault(key, []).append(copy)

    def _discard(self, copy: Copy) -> None:
        copy.adoption.close()  # it exits, let go without variables
        self._supervisor.spawn(copy.process.destroy(), "snapshot-spare-end")

    def on_config_change(self, config: FunctionConfig, deleted: bool) -> None:
        key = _key(config)
        entry = self._snapshots.get(key)
        if entry is not None and (deleted or entry[0].config.revision_id != config.revision_id):
            self._retire(key)
        if not deleted and key not in self._snapshots and self._eager is not None and self._eager(config):
            self.prime(config)

    def prime(self, config: FunctionConfig) -> None:
        """Make the version's snapshot (and its spare copies) now, in the background."""
        self._supervisor.spawn(self._prime(config), f"snapshot-{config.name}:{config.version}")

    async def _prime(self, config: FunctionConfig) -> None:
        try:
            snapshot = await self.snapshot_of(config)
        except Exception as exc:  # the first invocation makes it again (and says why it cannot)
            log.warning("the snapshot of %s:%s could not be made: %s", config.name, config.version, exc)
            return
        if snapshot is not None and not snapshot.init_failed:
            self.replenish(config, snapshot)

    def _retire(self, key: Key) -> None:
        env, started = self._snapshots.pop(key)
        started.cancel()
        for copy in self._spares.pop(key, []):
            self._discard(copy)
        self._supervisor.spawn(env.shutdown(), f"snapshot-shutdown-{env.id}")

    @property
    def count(self) -> int:
        return len(self._snapshots)

    async def close(self) -> None:
        for copies in self._spares.values():
            for copy in copies:
                copy.adoption.close()
                await copy.process.destroy()
        self._spares.clear()
        for key in list(self._snapshots):
            env, started = self._snapshots.pop(key)
            started.cancel()
            await env.shutdown()

"""Wires implementations together — the only module that chooses them — and owns the server's lifetime.

Every background loop (log flushing, environment reaping, settle tasks, environment shut-downs) belongs to
the :class:`Supervisor`; stopping is: stop accepting requests, shut every environment down, flush logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import resource
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from shoal.api.app import ShoalApp
from shoal.api.auth import Authenticator
from shoal.api.call import Services
from shoal.api.codeurls import CodeUrlSigner
from shoal.api.routing import lambda_routes
from shoal.config import Config
from shoal.control.aliases import AliasService
from shoal.control.concurrency import ConcurrencyService
from shoal.control.functions import FunctionService
from shoal.control.layers import LayerService, ResolvedLayer
from shoal.control.policies import PolicyService
from shoal.control.provisioned import ProvisionedService
from shoal.control.tags import TagService
from shoal.control.versions import VersionService
from shoal.core.accounts import CredentialStore
from shoal.core.tasks import Supervisor
from shoal.core.types import FunctionConfig
from shoal.environments.environment import Environment, Settings, discover_extensions
from shoal.environments.pool import EnvironmentPool, Limits
from shoal.environments.snapshots import Snapshots
from shoal.invoke.concurrency import ConcurrencyLimiter
from shoal.invoke.invoker import LocalInvoker
from shoal.logs.store import FileLogStore
from shoal.runtimes.builtin import registry as builtin_runtimes
from shoal.runtimes.registry import RuntimeRegistry
from shoal.sandbox import namespace
from shoal.sandbox.base import SandboxBackend
from shoal.sandbox.process import ProcessBackend
from shoal.store.catalog import FunctionCatalog
from shoal.store.code import FileCodeStore
from shoal.store.layers import SqlLayerStore
from shoal.store.sql import SqlFunctionStore, sqlite_engine

log = logging.getLogger("shoal")


def choose_backend(config: Config) -> tuple[SandboxBackend, str]:
    """The sandbox backend the settings ask for, and a note for the start-up log when it is not isolating."""
    if config.sandbox in ("auto", "namespace"):
        ok, why = namespace.available()
        if ok:
            backend = namespace.NamespaceBackend(
                config.data_path,
                uid_range=config.uid_range,
                network=config.function_network,
                cpu_floor=config.cpu_floor,
                stem_cells=config.stem_cells,
                favor_dynmods=config.cgroup_favordynmods,
            )
            backend.prepare(config.warm_cgroups)
            return backend, ""
        if config.sandbox == "namespace":
            raise RuntimeError(f"sandbox=namespace was asked for, but {why}")
        return ProcessBackend(), f"namespace sandbox unavailable ({why})"
    return ProcessBackend(), "process sandbox chosen by setting"


@dataclass
class Stack:
    """The running parts of one node, without HTTP."""

    config: Config
    supervisor: Supervisor
    catalog: FunctionCatalog
    store: SqlFunctionStore
    code: FileCodeStore
    logs: FileLogStore
    runtimes: RuntimeRegistry
    backend: SandboxBackend
    pool: EnvironmentPool
    invoker: ConcurrencyLimiter
    functions: FunctionService
    services: Services
    snapshots: Snapshots

    async def close(self) -> None:
        await self.pool.close()
        await self.snapshots.close()
        await self.supervisor.close()
        closer = getattr(self.backend, "close", None)
        if closer is not None:
            await asyncio.to_thread(closer)
        await asyncio.to_thread(self.logs.flush)
        self.store.close()


async def build(config: Config, *, backend: SandboxBackend | None = None) -> Stack:
    data = config.data_path
    data.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor()
    engine = sqlite_engine(data / "shoal.db")
    store = SqlFunctionStore(engine)
    layer_store = SqlLayerStore(engine)
    catalog = FunctionCatalog(store)
    await asyncio.to_thread(catalog.load)
    code = FileCodeStore(data / "code")
    layers = LayerService(
        layer_store, code, config.region, data / "code" / "opt", function_code_in_use=store.code_in_use
    )
    logs = FileLogStore(data / "logs", group_max_bytes=config.log_group_max_bytes)
    runtimes = builtin_runtimes()
    await asyncio.to_thread(runtimes.discover, config.runtimes)
    note = ""
    if backend is None:
        sandbox, note = await asyncio.to_thread(choose_backend, config)
    else:
        sandbox = backend
    if isinstance(sandbox, namespace.NamespaceBackend):
        sandbox.spawn = supervisor.spawn  # stem cells are made by tasks the server owns
    work_root = data / "environments"
    sandbox.cleanup_stale(work_root)  # what a crashed previous run left behind
    work_root.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        region=config.region,
        init_timeout=config.init_timeout,
        endpoint=config.endpoint,
        fork_server=config.fork_server,
        prestart=config.prestart,
    )

    can_fork = False
    if isinstance(sandbox, namespace.NamespaceBackend):
        ns_sandbox = sandbox
        can_fork = await asyncio.to_thread(lambda: ns_sandbox.adopts_forks)
    if not can_fork:
        log.info(
            "SnapStart versions run INIT in every environment: this sandbox cannot isolate forked copies"
        )

    def opt_of(fn: FunctionConfig) -> Path | None:
        return layers.opt_tree([ResolvedLayer.from_dict(layer) for layer in fn.layers])

    def from_snapshot(fn: FunctionConfig, family: str, opt: Callable[[], Path | None]) -> bool:
        """Whether the version's new environments are copies of its SnapStart snapshot. Copies are forked from
        the runtime alone: a function with external extensions runs INIT in each."""
        return snapshots.covers(fn, family, can_fork) and not discover_extensions(opt())

    def make_environment(fn: FunctionConfig, initialization_type: str = "on-demand") -> Environment:
        runtime = runtimes.require(fn.runtime)
        opt = opt_of(fn)
        env = Environment(
            fn,
            runtime,
            sandbox,
            code.task_root(fn.code_key),
            work_root,
            logs.emit,
            settings,
            initialization_type,
            opt_dir=opt,
        )
        if initialization_type == "on-demand" and from_snapshot(fn, runtime.family, lambda: opt):
            env.snapshots = snapshots
        return env

    def snapshot_now(fn: FunctionConfig) -> bool:
        """A new SnapStart version gets its snapshot when it is published, as on AWS."""
        runtime = runtimes.get(fn.runtime)
        return runtime is not None and from_snapshot(fn, runtime.family, lambda: opt_of(fn))

    snapshots = Snapshots(
        lambda fn: make_environment(fn, "snap-start"),
        supervisor,
        spares=config.stem_cells,
        eager=snapshot_now,
    )

    limits = Limits(
        scale_per_10s=config.scaling_rate,
        memory_budget_mb=config.memory_budget_mb,
        max_starting=config.max_starting,
    )
    pool = EnvironmentPool(make_environment, supervisor, idle_ttl=config.idle_ttl, limits=limits)
    catalog.subscribe(pool.on_config_change)
    catalog.subscribe(snapshots.on_config_change)
    for fn in catalog.all():  # the snapshots of SnapStart versions published before a restart
        if snapshot_now(fn):
            snapshots.prime(fn)
    invoker = ConcurrencyLimiter(
        LocalInvoker(catalog, pool, config.region), catalog, config.account_concurrency
    )
    functions = FunctionService(catalog, code, runtimes, supervisor, config.region, layers=layers)
    functions.account_limit = config.account_concurrency
    services = Services(
        config,
        functions,
        invoker,
        logs,
        CodeUrlSigner(data / "secret"),
        VersionService(functions),
        AliasService(functions),
        TagService(functions),
        PolicyService(functions),
        ConcurrencyService(functions, config.account_concurrency),
        ProvisionedService(functions, pool, config.account_concurrency),
        layers,
    )
    stack = Stack(
        config,
        supervisor,
        catalog,
        store,
        code,
        logs,
        runtimes,
        sandbox,
        pool,
        invoker,
        functions,
        services,
        snapshots,
    )
    supervisor.spawn(_flush_loop(logs, config.log_flush_interval), "log-flush")
    supervisor.spawn(pool.reap_loop(), "reaper")
    functions.resume_unsettled()
    services.provisioned.reconcile_all()  # provisioned environments come back after a restart
    if note:
        log.warning(
            "SANDBOX: functions are NOT isolated from each other or from this host: %s. "
            "Run as root on Linux for the namespace sandbox.",
            note,
        )
    return stack


async def _flush_loop(logs: FileLogStore, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(logs.flush)


class _HttpServer(uvicorn.Server):
    """uvicorn, minus its signal handling: it re-raises SIGTERM after serving, which would end the process
    before Shoal shuts its environments down and flushes its logs. ``serve`` installs its own handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def make_authenticator(config: Config) -> Authenticator:
    """SigV4 against the credentials file, or dev mode (any credentials) when none is configured."""
    store = CredentialStore.from_file(config.credentials) if config.credentials else None
    return Authenticator(store, default_account_id=config.account_id)


async def serve(config: Config) -> None:
    authenticator = make_authenticator(config)
    stack = await build(config)
    server = _HttpServer(
        uvicorn.Config(
            ShoalApp(stack.services, authenticator),
            host=config.host,
            port=config.port,
            lifespan="off",
            log_level="warning",
            access_log=False,
            server_header=False,
            date_header=False,
        )
    )
    log.info(
        "Shoal listening on %s (sandbox: %s%s; data: %s; runtimes: %s; %s)",
        config.endpoint,
        stack.backend.name,
        "" if stack.backend.isolates else ", NOT isolating",
        config.data_path,
        ", ".join(stack.runtimes.ids) or "none",
        authenticator.describe(),
    )
    if not authenticator.enabled and config.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "AUTH IS OFF on %s: anyone who can reach it can deploy and run code; "
            "give --credentials FILE (docs/auth.md)",
            config.endpoint,
        )
    # Everything made so far (modules, the API's service model, settings, the stores) lives as long as the
    # server: out of the collector's sight, a full collection no longer walks it (24-63 ms pauses, any
    # request in flight waiting through them)
    lambda_routes()  # botocore's service model, loaded here rather than by the first request (~25 ms)
    gc.collect()
    gc.freeze()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.handle_exit, sig, None)
    try:
        await server.serve()
    finally:
        await stack.close()
        log.info("Shoal stopped: environments shut down, logs flushed")


def raise_open_files_limit() -> int:
    """Every live environment holds a few descriptors of the server's (its output pipe, Runtime API
    connection, cgroup files), so a thousand of them need more than the usual soft limit of 1,024: take the
    hard limit. Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20  # (the kernel's default nr_open)
    if soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
    return soft


def run(config: Config) -> None:
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    raise_open_files_limit()
    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency, but stay runnable without it
            asyncio.run(serve(config))
        else:
            uvloop.run(serve(config))

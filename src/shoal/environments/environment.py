"""One execution environment: a sandboxed runtime for one function version, one invocation at a time.

Lifecycle: :meth:`Environment.start` (sandbox + runtime + INIT, bounded by the init timeout) → any number of
:meth:`Environment.invoke` → :meth:`Environment.shutdown`. A timeout, crash or init failure leaves the
environment dead; the pool replaces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shoal.core import ids
from shoal.core.arns import function_arn
from shoal.core.errors import SnapStartException, SnapStartTimeoutException
from shoal.core.types import FunctionConfig
from shoal.environments.runtime_api import Event, Reply, RuntimeEndpoint
from shoal.logs import format as fmt
from shoal.runtimes.registry import Runtime, fill
from shoal.sandbox.base import Adoption, SandboxBackend, SandboxProcess, SandboxSpec, Standby

log = logging.getLogger("shoal.environments")

MAX_LINE = 256 * 1024  # one log event at most (CloudWatch's event size)
_RUNTIME_DIR = "/var/runtime"
MAX_EXTENSIONS = 10  # spec §3.2
RESTORE_TIMEOUT = 10.0  # seconds a SnapStart restore (with its after-restore hooks) may take
EXTENSION_SHUTDOWN_GRACE = 2.0  # seconds external extensions get after SHUTDOWN (spec §3.4)
# read by the dynamic loader and the C library only when a process starts; with one of these set by the
# function, its runtime is started for it, never specialised from a pre-started one
START_TIME_VARIABLES = ("LD_", "MALLOC_", "GLIBC_", "AWS_LAMBDA_EXEC_WRAPPER")


class EnvironmentGone(Exception):
    """The environment's runtime ended between invocations; the invocation never reached it."""


@dataclass(slots=True)
class Invocation:
    request_id: str
    payload: bytes
    invoked_arn: str
    client_context: str | None = None
    trace_id: str | None = None


@dataclass(slots=True)
class Outcome:
    payload: bytes
    function_error: bool = False
    log_lines: list[str] = field(default_factory=list)  # START … REPORT, for LogType Tail
    duration_ms: float = 0.0
    init_ms: float | None = None
    status: str = "success"  # success | error | timeout
    error_type: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    region: str
    init_timeout: float
    endpoint: str  # the API's URL, offered to functions as AWS_ENDPOINT_URL_LAMBDA
    fork_server: bool = True  # start runtimes from a warm fork-server where the backend has one
    prestart: bool = True  # specialise a pre-started runtime where the runtime and backend allow
    freeze_after: float = 0.05  # seconds an idle environment runs on before it is frozen


LogEmitter = Callable[[str, str, str, int, str], None]  # account, group, stream, timestamp ms, message


@dataclass(frozen=True, slots=True)
class Copy:
    """A copy forked from a snapshot, in its own sandbox, waiting for its variables."""

    adoption: Adoption
    process: SandboxProcess


class SnapshotSource(Protocol):
    """Where a SnapStart version's environments are forked from (``environments/snapshots.py``)."""

    async def snapshot_of(self, config: FunctionConfig) -> Environment | None:
        """The version's snapshot, made on first need; None when this version's environments run INIT."""

    def take_spare(self, config: FunctionConfig) -> Copy | None:
        """A copy of the version's snapshot made ahead of need, if one is ready."""

    def replenish(self, config: FunctionConfig, snapshot: Environment) -> None:
        """Make spare copies ahead of need (in the background)."""


def _error_body(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class Environment:
    def __init__(
        self,
        config: FunctionConfig,
        runtime: Runtime,
        backend: SandboxBackend,
        code_dir: Path,
        work_root: Path,
        emit: LogEmitter,
        settings: Settings,
        initialization_type: str = "on-demand",
        opt_dir: Path | None = None,
    ) -> None:
        self.config = config
        self.opt_dir = opt_dir  # the function's layers merged in order: its /opt
        self.runtime = runtime
        self.backend = backend
        self.code_dir = code_dir
        self.id = uuid.uuid4().hex
        self.work_dir = work_root / self.id
        self.settings = settings
        self.initialization_type = initialization_type  # "on-demand" | "provisioned-concurrency"
        self.provisioned = initialization_type == "provisioned-concurrency"
        self._emit = emit
        self.created_at = time.time()
        self.stream = ids.log_stream_name(config.version, self.created_at)
        self.group = config.effective_log_group
        self.endpoint: RuntimeEndpoint | None = None
        self.process: SandboxProcess | None = None
        self.alive = False
        self.stale = False  # its function version changed: retire instead of reusing
        self.busy = False
        self.idle_since = time.monotonic()
        self.invocations = 0
        self.init_ms: float | None = None
        self._init_failure: tuple[str, bytes] | None = None
        self._partial = b""
        self._capture: list[str] | None = None
        self._init_output: list[str] = []
        self._freeze_timer: asyncio.TimerHandle | None = None
        self._frozen = False
        self._init_peak_mb = 0
        # SnapStart: where copies of this version's snapshot come from (set by the server's factory), the
        # variables the runtime was given, and how long this environment's restore took
        self.snapshots: SnapshotSource | None = None
        self.variables: dict[str, str] = {}
        self.restore_ms: float | None = None
        self._forks_in_flight = 0  # a snapshot is never frozen while a copy may still be in its process group
        self._settling: asyncio.Future[None] | None = None  # the CPU quota, applied after INIT (owned here)

    # ---- logging --------------------------------------------------------------------------------------

    def log(self, message: str) -> None:
        self._emit(self.config.account_id, self.group, self.stream, int(time.time() * 1000), message)
        if self._capture is not None:
            self._capture.append(message)

    def _on_output(self) -> None:
        assert self.process is not None
        fd = self.process.output_fd
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._stop_reading()
                return
            data = self._partial + chunk
            *lines, self._partial = data.split(b"\n")
            for line in lines:
                self.log(line[:MAX_LINE].decode("utf-8", "replace"))
            if len(self._partial) > MAX_LINE:
                self.log(self._partial[:MAX_LINE].decode("utf-8", "replace"))
                self._partial = b""

    def _stop_reading(self) -> None:
        if self.process is not None and self.process.output_fd >= 0:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self.process.output_fd)
            with contextlib.suppress(OSError):
                os.close(self.process.output_fd)
            self.process.output_fd = -1
        if self._partial:
            self.log(self._partial.decode("utf-8", "replace"))
            self._partial = b""

    # ---- lifecycle ------------------------------------------------------------------------------------

    def _environment_variables(
        self, runtime_api: str, task_root: str, runtime_dir: str, places: dict[str, str]
    ) -> dict[str, str]:
        c = self.config
        env = self._runtime_variables(task_root, runtime_dir, places)
        env["AWS_ENDPOINT_URL_LAMBDA"] = self.settings.endpoint
        env.update(c.environment or {})
        env.update(
            {
                "_HANDLER": c.handler,
                "AWS_REGION": self.settings.region,
                "AWS_DEFAULT_REGION": self.settings.region,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{c.runtime}",
                "AWS_LAMBDA_FUNCTION_NAME": c.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(c.memory_size),
                "AWS_LAMBDA_FUNCTION_VERSION": c.version,
                "AWS_LAMBDA_INITIALIZATION_TYPE": self.initialization_type,
                "AWS_LAMBDA_LOG_GROUP_NAME": self.group,
                "AWS_LAMBDA_LOG_STREAM_NAME": self.stream,
                "AWS_LAMBDA_RUNTIME_API": runtime_api,
                "AWS_ACCESS_KEY_ID": "SHOALFUNCTIONKEY0000",
                "AWS_SECRET_ACCESS_KEY": "shoal-function-secret-not-a-real-credential",
                "AWS_SESSION_TOKEN": "shoal-function-session",
                "LAMBDA_TASK_ROOT": task_root,
                "LAMBDA_RUNTIME_DIR": runtime_dir,
            }
        )
        if self.initialization_type == "snap-start":  # as on AWS: not available to SnapStart functions
            del env["AWS_LAMBDA_LOG_GROUP_NAME"], env["AWS_LAMBDA_LOG_STREAM_NAME"]
        if c.log_format == "JSON":
            env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
            if c.application_log_level:
                env["AWS_LAMBDA_LOG_LEVEL"] = c.application_log_level
        if not self.runtime.managed:
            del env["AWS_EXECUTION_ENV"]
        return env

    def _runtime_variables(self, task_root: str, runtime_dir: str, places: dict[str, str]) -> dict[str, str]:
        """What the runtime process starts with, the same for every function of the runtime (the function's
        own variables may replace them)."""
        env = {
            "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LD_LIBRARY_PATH": f"/var/lang/lib:/lib64:/usr/lib64:{runtime_dir}:{runtime_dir}/lib:"
            f"{task_root}:{task_root}/lib:/opt/lib",
        }
        env.update(self.runtime.environment(places))
        return env

    def _standby(
        self, argv: list[str], task_root: str, runtime_dir: str, places: dict[str, str]
    ) -> Standby | None:
        """The pre-started runtime this environment may be specialised from, if it can be: the runtime allows
        it, no external extension must start first, and no variable the runtime reads only at start-up (nor
        one of the dynamic loader's or the C library's) is the function's."""
        if not (self.settings.prestart and self.runtime.prestart) or self.runtime.entrypoint is not None:
            return None
        fixed_at_start = (*self.runtime.start_time_variables, *START_TIME_VARIABLES)
        if any(name.startswith(fixed_at_start) for name in self.config.environment or {}):
            return None
        env = self._runtime_variables(task_root, runtime_dir, places)
        env["SHOAL_STANDBY_FD"] = "3"
        flags = tuple(fill(flag, places) for flag in self.runtime.standby_flags)
        return Standby((argv[0], *flags, *argv[1:]), tuple(sorted(env.items())))

    def _admit(self, uid: int) -> None:
        """The runtime runs as ``uid`` (a pre-started one has its own): only it may connect."""
        if self.endpoint is not None:
            self.endpoint.allowed_uid = uid

    async def start(self) -> None:
        """Create the sandbox, start the runtime and run INIT. Never raises for function faults: an init
        failure is kept and answered to the first invocation. A SnapStart version's environment is forked
        from its snapshot instead (:meth:`_restore`)."""
        source = self.snapshots
        if source is not None:
            snapshot = await source.snapshot_of(self.config)
            if snapshot is not None:
                await self._restore(source, snapshot)
                return
        executable = None
        if self.runtime.entrypoint is not None:  # before taking any resource: nothing to give back
            executable = self.runtime.entrypoint(self.code_dir, self.opt_dir)
            if executable is None:
                self.log(self._init_start_line())
                self.log(fmt.init_report(0.0, "init", "error", "Runtime.InvalidEntrypoint"))
                self._init_failure = (
                    "Runtime.InvalidEntrypoint",
                    _error_body(
                        "Runtime.InvalidEntrypoint",
                        "RequestId: {request_id} Error: Couldn't find valid bootstrap(s): "
                        "[/var/task/bootstrap /opt/bootstrap]",
                    ),
                )
                self.init_ms = 0.0
                return
        self.endpoint = RuntimeEndpoint()
        extensions = discover_extensions(self.opt_dir)
        if extensions:
            self.endpoint.expect_extensions(
                extensions, self.config.name, self.config.version, self.config.handler
            )
        identity = self.backend.new_identity()
        address = self.backend.runtime_api_address()
        if address is None:
            self.endpoint.allowed_uid = identity  # set before the runtime can connect
            address = await self.endpoint.listen()
        spec = SandboxSpec(
            env_id=self.id,
            argv=[],
            env={},
            code_dir=self.code_dir,
            work_dir=self.work_dir,
            memory_mb=self.config.memory_size,
            ephemeral_mb=self.config.ephemeral_storage,
            extra_ro_binds=(
                (self.runtime.bootstrap_dir, _RUNTIME_DIR),
                *((p, str(p)) for p in self.runtime.host_paths),
                *(((self.opt_dir, "/opt"),) if self.opt_dir is not None else ()),
            ),
            uid=identity,
            preload=(
                (self.runtime.executable, str(self.runtime.preload))
                if self.runtime.preload is not None and self.settings.fork_server
                else None
            ),
        )
        task_root = self.backend.task_root(spec)
        runtime_dir = self.backend.sandbox_path(spec, self.runtime.bootstrap_dir, _RUNTIME_DIR)
        opt = self.backend.sandbox_path(spec, self.opt_dir, "/opt") if self.opt_dir is not None else "/opt"
        places = {
            "runtime_dir": runtime_dir,
            "task_root": task_root,
            "opt": opt,
            "memory_mb": str(self.config.memory_size),
        }
        argv = self.runtime.argv(places, executable)
        self.variables = self._environment_variables(address, task_root, runtime_dir, places)
        spec = dataclasses.replace(
            spec,
            argv=argv,
            env=self.variables,
            extensions=tuple(f"{opt}/extensions/{name}" for name in extensions),
            standby=None if extensions else self._standby(argv, task_root, runtime_dir, places),
            admit=self._admit if self.endpoint.allowed_uid is not None else None,
        )
        self.log(self._init_start_line())
        self._capture = []  # INIT's own output, replayed into the first invocation if INIT fails
        started = time.monotonic()
        try:
            self.process = await self.backend.start(spec)
        except OSError as exc:  # the program could not be executed at all
            self.init_ms = (time.monotonic() - started) * 1000
            self.log(fmt.init_report(self.init_ms, "init", "error", "Runtime.InvalidEntrypoint"))
            reason = exc.strerror or str(exc)
            self._init_failure = (
                "Runtime.InvalidEntrypoint",
                _error_body(
                    "Runtime.InvalidEntrypoint",
                    f"RequestId: {{request_id}} Error: fork/exec {spec.argv[0]}: "
                    f"{reason[:1].lower()}{reason[1:]}",
                ),
            )
            return
        done = await self._watch(
            self.process, self.endpoint, self.endpoint.init_error, self.settings.init_timeout
        )
        self.init_ms = (time.monotonic() - started) * 1000
        if self.endpoint.ready in done:
            self._capture = None
            if self.initialization_type == "snap-start":  # its copies begin in its cgroup
                # no invocation's REPORT will carry this INIT's duration: as on AWS, INIT_REPORT does
                self.log(fmt.init_report(self.init_ms, "init"))
                await self.process.become_snapshot()
            else:
                self._apply_quota()
                if self.provisioned:  # no invocation is on its way
                    self.process.settled()
            self._freeze_when_idle()
            return
        self._on_output()
        init_output, self._capture = self._capture or [], None
        if self.endpoint.init_error in done:
            error_type, body = self.endpoint.init_error.result()
            if error_type != "Extension.InitError":
                error_type = fmt.platform_error_type(error_type)
            self._init_output = [line for line in init_output if not line.startswith("INIT_")]
            self.log(fmt.init_report(self.init_ms, "init", "error", error_type))
            self._init_failure = (error_type, body)
        elif self.process.exited in done:
            self._init_output = [line for line in init_output if not line.startswith("INIT_")]
            reason = fmt.exit_reason(self.process.exited.result())
            self.log(fmt.init_report(self.init_ms, "init", "error", "Runtime.ExitError"))
            self._init_failure = (
                "Runtime.ExitError",
                _error_body(
                    "Runtime.ExitError",
                    f"RequestId: {{request_id}} Error: Runtime exited with error: {reason}",
                ),
            )
        else:
            self.log(fmt.init_report(self.init_ms, "init", "timeout"))
            self._init_failure = ("Sandbox.Timedout", b"")
        self._init_peak_mb = self.process.peak_memory_mb()
        await self._kill()

    async def _watch(
        self, process: SandboxProcess, endpoint: RuntimeEndpoint, failed: asyncio.Future[Any], timeout: float
    ) -> set[asyncio.Future[Any]]:
        """The runtime runs: follow its exit and its output, and wait until it is ready (its first
        ``/next``), ``failed`` resolves, it exits, or ``timeout`` passes. Returns what happened."""
        self.alive = True
        process.exited.add_done_callback(self._on_exit)
        asyncio.get_running_loop().add_reader(process.output_fd, self._on_output)
        if process.listener is not None:
            await endpoint.adopt(process.listener)
        waiters: set[asyncio.Future[Any]] = {endpoint.ready, failed, process.exited}
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        return done

    def _freeze_when_idle(self) -> None:
        """From now on, whenever the runtime waits on /next with nothing to do, it is frozen: no CPU while
        idle, not billed (a runtime that exits after replying is not caught mid-exit)."""
        if self.endpoint is not None:
            self.endpoint.on_parked = self._schedule_freeze
        self._schedule_freeze()

    def _apply_quota(self) -> None:
        """From the first invocation on the environment's CPU quota applies (INIT had AWS's boost). The write
        (a worker thread's) overlaps that invocation's start rather than delaying it: a thread hop less on
        every cold start. Owned here: shutdown waits for it, a failure is logged."""
        if self.process is None:
            return
        self._settling = asyncio.ensure_future(self.process.after_init())
        self._settling.add_done_callback(_log_failure)

    def _schedule_freeze(self) -> None:
        """The runtime waits on /next: freeze it once it has stayed idle for ``freeze_after`` seconds, so
        a busy environment is never stopped and thawed between back-to-back invocations."""
        if self._freeze_timer is None and not self._frozen:
            self._freeze_timer = asyncio.get_running_loop().call_later(
                self.settings.freeze_after, self._freeze_now
            )

    def _freeze_now(self) -> None:
        self._freeze_timer = None
        if self._forks_in_flight:
            return  # frozen once the last copy has left (fork_settled)
        if self.process is not None and self.alive and self.endpoint is not None and self.endpoint.parked:
            self.process.freeze()
            self._frozen = True

    def _wake(self) -> None:
        if self._freeze_timer is not None:
            self._freeze_timer.cancel()
            self._freeze_timer = None
        if self._frozen and self.process is not None:
            self.process.thaw()
            self._frozen = False

    def _init_start_line(self, restore: bool = False) -> str:
        arn = f"arn:aws:lambda:{self.settings.region}::runtime:{_runtime_sha(self.runtime)}"
        return (fmt.restore_start if restore else fmt.init_start)(self.runtime.runtime_version, arn)

    # ---- SnapStart ------------------------------------------------------------------------------------

    def request_fork(self, body: bytes) -> None:
        """This environment is a snapshot: fork the copy ``body`` describes. Until :meth:`fork_settled`,
        the snapshot is not frozen (a stop signal to its process group would catch a copy that has not left
        it yet)."""
        if self.endpoint is None:
            raise RuntimeError("the snapshot has no Runtime API")
        self._forks_in_flight += 1
        self._wake()
        self.endpoint.request_fork(body)

    def fork_settled(self) -> None:
        self._forks_in_flight -= 1
        if not self._forks_in_flight and self.endpoint is not None and self.endpoint.parked:
            self._schedule_freeze()

    async def fork_copy(
        self, memory_mb: int, tmp_mb: int, work_dir: Path, identity: int | None = None
    ) -> Copy:
        """This environment is a snapshot: fork a copy and move it into a sandbox of its own (``identity``,
        or a new one; its cgroup and ``/tmp``), where it waits for an environment's variables
        (``Copy.adoption.deliver``)."""
        parent_uid = self.process.uid if self.process is not None else None
        adoption = self.backend.fork_adoption() if parent_uid is not None else None
        if adoption is None or parent_uid is None:
            raise RuntimeError("this sandbox cannot adopt environments forked from a snapshot")
        if identity is None:
            identity = self.backend.new_identity()
        if identity is None:
            adoption.close()
            raise RuntimeError("this sandbox gives environments no identity of their own")
        self.request_fork(
            json.dumps({"handshake": adoption.name, "uid": identity, "tmp_mb": tmp_mb}).encode()
        )
        try:
            process = await asyncio.wait_for(
                adoption.adopt(parent_uid=parent_uid, uid=identity, memory_mb=memory_mb, work_dir=work_dir),
                RESTORE_TIMEOUT,
            )
        except BaseException:
            adoption.close()
            raise
        finally:
            self.fork_settled()
        return Copy(adoption, process)

    async def _restore(self, source: SnapshotSource, snapshot: Environment) -> None:
        """Become a copy forked from ``snapshot`` (INIT and the before-snapshot hooks already ran there): a
        spare one made ahead, or one forked now. ``RESTORE_START``, its variables, the after-restore hooks,
        ``RESTORE_REPORT``."""
        if snapshot._init_failure is not None:  # its INIT failed: so does every environment's, as it did
            self._init_failure, self._init_output = snapshot._init_failure, snapshot._init_output
            self.init_ms = snapshot.init_ms or 0.0
            return
        self.log(self._init_start_line(restore=True))
        started = time.monotonic()
        deadline = started + RESTORE_TIMEOUT
        self.endpoint = RuntimeEndpoint()
        copy = source.take_spare(self.config)
        if copy is None:  # fork one now, while the Runtime API starts listening
            identity = self.backend.new_identity()
            self.endpoint.allowed_uid = identity
            forking = asyncio.ensure_future(
                snapshot.fork_copy(
                    self.config.memory_size, self.config.ephemeral_storage, self.work_dir, identity
                )
            )
            try:
                address = await self.endpoint.listen()
                copy = await forking
            except TimeoutError:
                raise SnapStartTimeoutException.restore() from None
            finally:
                if not forking.done():
                    forking.cancel()
        else:
            self.endpoint.allowed_uid = copy.process.uid
            address = await self.endpoint.listen()
        source.replenish(self.config, snapshot)
        self.process = process = copy.process
        self.variables = {**snapshot.variables, "AWS_LAMBDA_RUNTIME_API": address}
        try:
            await copy.adoption.deliver(json.dumps(self.variables).encode())
        finally:
            copy.adoption.close()
        endpoint = self.endpoint
        done = await self._watch(
            process, endpoint, endpoint.restore_error, max(0.0, deadline - time.monotonic())
        )
        self.restore_ms = (time.monotonic() - started) * 1000
        if self.endpoint.ready in done:
            self._apply_quota()
            self.log(fmt.restore_report(self.restore_ms))
            self._freeze_when_idle()
            return
        self._on_output()
        await self._kill()
        if self.endpoint.restore_error in done or process.exited in done:
            raise SnapStartException.after_restore()
        raise SnapStartTimeoutException.restore()

    @property
    def init_failed(self) -> bool:
        return self._init_failure is not None

    def _on_exit(self, _: asyncio.Future[int]) -> None:
        self.alive = False

    async def invoke(self, inv: Invocation) -> Outcome:
        """Run one invocation. The caller guarantees one at a time."""
        self.invocations += 1
        cold = self.invocations == 1
        init_ms = self.init_ms if cold else None
        restore_ms = self.restore_ms if cold else None
        self._capture = []
        self.log(fmt.start(inv.request_id, self.config.version))
        if self._init_failure is not None:
            return self._finish_init_failure(inv, init_ms)
        assert self.endpoint is not None and self.process is not None

        loop = asyncio.get_running_loop()
        now = time.time()
        event = Event(
            request_id=inv.request_id,
            payload=inv.payload,
            deadline_ms=int((now + self.config.timeout) * 1000),
            invoked_arn=inv.invoked_arn,
            trace_id=inv.trace_id or ids.trace_id(now),
            client_context=inv.client_context,
        )
        endpoint = self.endpoint
        self._wake()
        if not endpoint.parked:  # still finishing the previous invocation (or exiting after it)
            parked = endpoint.until_parked()
            pending: set[asyncio.Future[Any]] = {parked, self.process.exited}
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if not parked.done():
                parked.cancel()
                self._capture = None
                self.invocations -= 1
                raise EnvironmentGone(f"the runtime exited before invocation {inv.request_id} reached it")
            self._wake()  # parking scheduled a freeze
        started = time.monotonic()
        timer = loop.call_later(self.config.timeout, endpoint.finish, Reply("timeout"))
        exit_watch = self.process.exited
        on_exit = lambda fut: endpoint.finish(Reply("exit", returncode=fut.result()))  # noqa: E731
        exit_watch.add_done_callback(on_exit)
        endpoint.deliver(event)
        try:
            reply = await event.reply
        finally:
            timer.cancel()
            exit_watch.remove_done_callback(on_exit)
        duration_ms = (time.monotonic() - started) * 1000
        self._on_output()  # the runtime flushed its output before posting: collect it before END
        outcome = await self._complete(inv, reply, duration_ms, init_ms, restore_ms)
        if cold:
            self.process.settled()
        return outcome

    async def _complete(
        self,
        inv: Invocation,
        reply: Reply,
        duration_ms: float,
        init_ms: float | None,
        restore_ms: float | None = None,
    ) -> Outcome:
        rid = inv.request_id
        status, error_type, function_error, payload = "success", None, False, reply.body
        max_mem = self.process.peak_memory_mb() if self.process else 0  # before any kill below
        if reply.kind == "error":
            function_error = True
        elif reply.kind == "too_large":
            function_error, status, error_type = True, "error", "Function.ResponseSizeTooLarge"
            payload = _error_body(
                error_type, "Response payload size exceeded maximum allowed payload size (6291556 bytes)."
            )
        elif reply.kind == "timeout":
            function_error, status, error_type = True, "timeout", "Sandbox.Timedout"
            duration_ms = self.config.timeout * 1000.0
            self.log(fmt.timed_out(time.time(), rid, self.config.timeout))
            payload = _error_body(
                error_type, f"RequestId: {rid} Error: Task timed out after {self.config.timeout:.2f} seconds"
            )
            await self._shutdown_extensions("timeout")
            await self._kill()
        elif reply.kind == "exit":
            oom = self.process is not None and self.process.oom_killed()
            function_error, status = True, "error"
            error_type = "Runtime.OutOfMemory" if oom else "Runtime.ExitError"
            reason = fmt.exit_reason(reply.returncode if reply.returncode is not None else -9)
            await self._shutdown_extensions("failure")  # where they outlive the runtime (process backend)
            self._on_output()
            self.log(fmt.runtime_exited(rid, reason))
            self.log(error_type)
            payload = _error_body(error_type, f"RequestId: {rid} Error: Runtime exited with error: {reason}")
            await self._kill()
        self.log(fmt.end(rid))
        self.log(
            fmt.report(
                rid,
                duration_ms,
                self.config.memory_size,
                max_mem,
                init_ms,
                None if status == "success" else status,
                None if status == "timeout" else error_type,
                restore_ms,
            )
        )
        lines, self._capture = self._capture or [], None
        return Outcome(payload, function_error, lines, duration_ms, init_ms, status, error_type)

    def _finish_init_failure(self, inv: Invocation, init_ms: float | None) -> Outcome:
        assert self._init_failure is not None
        error_type, body = self._init_failure
        rid = inv.request_id
        status = "error"
        if error_type == "Sandbox.Timedout":
            status = "timeout"
            body = _error_body(
                error_type,
                f"RequestId: {rid} Error: Task timed out after {self.settings.init_timeout:.2f} seconds",
            )
        elif b"{request_id}" in body:
            body = body.replace(b"{request_id}", rid.encode())
        # AWS runs a failed INIT again inside the invocation ("suppressed init"): its output and an
        # INIT_REPORT of phase "invoke" appear between START and END; the output is replayed here
        duration = init_ms or 0.0
        for line in self._init_output:
            self.log(line)
        if error_type != "Runtime.InvalidEntrypoint":
            self.log(fmt.init_report(duration, "invoke", status, error_type if status == "error" else None))
        self.log(fmt.end(rid))
        self.log(
            fmt.report(
                rid,
                duration,
                self.config.memory_size,
                self._init_peak_mb,
                init_ms,
                status,
                None if status == "timeout" else error_type,
            )
        )
        lines, self._capture = self._capture or [], None
        return Outcome(body, True, lines, duration, init_ms, status, error_type)

    async def _kill(self) -> None:
        self.alive = False
        if self.process is not None:
            self.process.kill()
            await self.process.exited
            self._on_output_final()

    async def _shutdown_extensions(self, reason: str) -> None:
        """SHUTDOWN to the extensions registered for it, then up to 2 s for them to exit (spec §3.4).
        Nothing to do, and no cost, without extensions."""
        endpoint, process = self.endpoint, self.process
        if endpoint is None or process is None or process.returncode is not None or not endpoint.extensions:
            return
        endpoint.on_parked = None  # no freezing from here on
        self._wake()
        deadline = time.monotonic() + EXTENSION_SHUTDOWN_GRACE
        if not endpoint.shutdown_extensions(reason, int((time.time() + EXTENSION_SHUTDOWN_GRACE) * 1000)):
            return
        while time.monotonic() < deadline and process.returncode is None:
            if not process.helpers_alive():
                break
            await asyncio.sleep(0.02)
        self._on_output()

    def _on_output_final(self) -> None:
        if self.process is not None and self.process.output_fd >= 0:
            self._on_output()
            self._stop_reading()

    async def shutdown(self) -> None:
        """End the environment: kill its process tree, close its endpoint, remove its scratch space."""
        if self._settling is not None:
            with contextlib.suppress(Exception):
                await self._settling
        await self._shutdown_extensions("spindown")
        self.alive = False
        if self._freeze_timer is not None:
            self._freeze_timer.cancel()
            self._freeze_timer = None
        if self.process is not None:
            await self.process.destroy()
            self._on_output_final()
        if self.endpoint is not None:
            self.endpoint.close()
        await asyncio.to_thread(_remove_tree, self.work_dir)


def _log_failure(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("an environment's CPU quota could not be applied: %s", done.exception())


def discover_extensions(opt_dir: Path | None) -> list[str]:
    """The external extensions of a function: the executable files in its ``/opt/extensions`` (host side),
    by name; at most ten (spec §3.2)."""
    if opt_dir is None:
        return []
    names = []
    try:
        with os.scandir(opt_dir / "extensions") as it:
            for entry in it:
                if entry.is_file() and os.access(entry.path, os.X_OK):
                    names.append(entry.name)
    except OSError:
        return []
    return sorted(names)[:MAX_EXTENSIONS]


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _runtime_sha(runtime: Runtime) -> str:
    import hashlib

    return hashlib.sha256(f"{runtime.id}:{runtime.version}".encode()).hexdigest()


def invoked_arn(region: str, config: FunctionConfig, qualifier: str | None) -> str:
    return function_arn(region, config.account_id, config.name, qualifier)

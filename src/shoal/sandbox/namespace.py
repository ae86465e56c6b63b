"""The namespace backend: every environment in its own PID, mount, IPC and UTS namespaces (and network
namespace when functions have no network), its own cgroup and its own unprivileged uid.

The privileged set-up happens in ``launcher.py`` (a separate, stdlib-only program). This module only
prepares the launcher's spec, reads its report, and owns the environment's lifetime: the environment's first
process (PID 1 of its namespace) is inherited by the server, which is a child subreaper.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import marshal
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from shoal.sandbox.base import SandboxProcess, SandboxSpec, Standby
from shoal.sandbox.cgroups import CgroupPool, CgroupUnavailable, Slot, cpu_quota_us
from shoal.sandbox.forks import ForkAdoption
from shoal.sandbox.uids import UidAllocator

LAUNCHER = Path(__file__).with_name("launcher.py")
TASK_ROOT = "/var/task"
PRIVATE_RUNTIME_API = "127.0.0.1:9001"
MAX_FDS = 1024
MAX_PROCS = 1024
PR_SET_CHILD_SUBREAPER = 36
GRAFTED = (TASK_ROOT, "/opt")  # the function's own directories, grafted into a pre-started environment
MARSHAL_FORMAT = 4  # what the launcher is sent in: every supported interpreter reads it
STEM_TMP_MB = 512  # the /tmp a stem cell mounts ahead: the default EphemeralStorage
# what a SnapStart snapshot's cgroup may hold beyond the function's memory: the pages its copies touched
# before they moved to their own cgroups stay charged to it while they live (~0.9 MB a copy, measured with
# python3.12); past it the snapshot is killed and made again on next need, never the host's memory
SNAPSHOT_HEADROOM_MB = 2048
SLOT_BATCH_MAX = 16  # cgroup slots made in one worker-thread hop for the starts waiting on one

log = logging.getLogger(__name__)


def _launcher_argv() -> list[str]:
    return [os.path.realpath(sys.executable), "-I", "-S", str(LAUNCHER)]


def available() -> tuple[bool, str]:
    """Whether this host lets Shoal isolate environments, with the reason when it does not."""
    if sys.platform != "linux":
        return False, "namespaces need Linux"
    if os.geteuid() != 0:
        return False, "the server is not running as root"
    try:
        probe_pool = CgroupPool("probe")
        probe_pool.close()
    except (CgroupUnavailable, OSError) as exc:
        return False, f"cgroups are not usable: {exc}"
    with tempfile.TemporaryDirectory(prefix="shoal-probe-") as root:
        try:
            probe = subprocess.run(
                [*_launcher_argv(), "--probe", root], capture_output=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return False, f"the launcher probe failed: {exc}"
    if probe.returncode != 0:
        return False, f"the launcher probe failed: {probe.stderr.decode(errors='replace').strip()}"
    return True, ""


def forks_isolatable() -> bool:
    """Whether copies forked from a SnapStart snapshot can be given namespaces of their own here (unprivileged
    user namespaces allowed)."""
    try:
        probe = subprocess.run(
            [*_launcher_argv(), "--probe-userns"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def daemon_environment() -> dict[str, str]:
    """What a launcher daemon starts with. Never the server's own environment: a zygote's children are
    environments, and a process's initial environment stays in its memory (the top of its stack, where a
    forked child's code can read it) whatever ``os.environ`` becomes later."""
    env = {"LANG": "C.UTF-8"}
    if "LD_LIBRARY_PATH" in os.environ:  # an interpreter built to find its libpython there
        env["LD_LIBRARY_PATH"] = os.environ["LD_LIBRARY_PATH"]
    return env


def become_subreaper() -> None:
    """Processes that lose their parent (a SnapStart copy's, or a launcher daemon's should it end) are
    re-parented to this process; PID 1 of each environment is its child from the start."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


class NamespaceProcess(SandboxProcess):
    """PID 1 of an environment's PID namespace, with its cgroup slot and uid."""

    def __init__(
        self,
        pid: int,
        output_fd: int,
        work_dir: Path,
        backend: NamespaceBackend,
        slot: Slot,
        uid: int,
        memory_mb: int,
        listener: socket.socket | None,
        report: socket.socket | None = None,
        started: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(pid, output_fd, work_dir)
        self.backend = backend
        # the stem cell this environment was is replaced once its start is over (its first invocation was
        # answered): making the next stem while a start is on its way takes the CPU from it
        self._on_started = started
        self.slot = slot
        self.uid = uid
        self.own_uid = uid
        self.memory_mb = memory_mb
        self.listener = listener
        self._oom_baseline = slot.oom_kills()
        self._released = False
        # a pre-started environment: PID 1 is the launcher's init, which reports the runtime's wait status
        # (``W<status>``) here before it exits
        self.report = report
        self.early: list[bytes] = []  # report lines read with ``G``
        self._runtime_pid = 0

    def _exit_code(self, status: int) -> int:
        if self.report is None:
            return super()._exit_code(status)
        try:
            self.report.setblocking(False)
            data = self.report.recv(256)
        except OSError:
            data = b""
        finally:
            self.report.close()
        for line in [*self.early, *data.split(b"\n")]:
            if line.startswith(b"W") and line[1:].isdigit():
                return os.waitstatus_to_exitcode(int(line[1:]))
        return super()._exit_code(status)  # init itself failed (125) or was killed

    def runtime_pid(self) -> int:
        if self.report is None:
            return self.pid
        if not self._runtime_pid:  # the first child of init is the runtime
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{self.pid}/task/{self.pid}/children", "rb") as fh:
                    self._runtime_pid = int(fh.read().split()[0])
        return self._runtime_pid or self.pid

    def peak_memory_mb(self) -> int:
        return self.slot.peak_memory_mb()

    def oom_killed(self) -> bool:
        return self.slot.oom_kills() > self._oom_baseline

    def freeze(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGCONT)

    def settled(self) -> None:
        on_started, self._on_started = self._on_started, None
        if on_started is not None:
            on_started()

    async def after_init(self) -> None:
        """INIT ran with the CPU boost AWS gives it; from the first invoke on, the quota applies (one bounded
        write, made here: a worker thread's hop would cost more)."""
        self.slot.set_cpu_quota(cpu_quota_us(self.memory_mb, self.backend.cpu_floor, self.backend.cpus))

    async def become_snapshot(self) -> None:
        self.settled()  # a snapshot's start is over once its INIT is
        await asyncio.to_thread(self.slot.raise_memory_limit, self.memory_mb + SNAPSHOT_HEADROOM_MB)

    async def destroy(self, grace: float = 0.0) -> None:
        # never settled (INIT failed, or the server is stopping): the next start that settles tops stems up
        self._on_started = None
        self.thaw()  # a stopped process does not act on SIGTERM
        await super().destroy(grace)
        if not self._released:
            self._released = True
            await asyncio.to_thread(self.backend.release, self.slot, self.own_uid)
            await asyncio.to_thread(shutil.rmtree, self.work_dir, True)
        if self.listener is not None:
            self.listener.close()


class NamespaceBackend:
    name = "namespace"
    isolates = True

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        uid_range: str = "100000-165535",
        network: bool = True,
        cpu_floor: float = 0.1,
        stem_cells: int = 2,
        await_standby: bool = False,
        favor_dynmods: bool = True,
    ) -> None:
        self.cgroups = CgroupPool.for_data_dir(data_dir) if data_dir else CgroupPool(f"pid{os.getpid()}")
        self._prepared = False
        self._daemons: dict[tuple[str, str] | None, tuple[subprocess.Popen[bytes], socket.socket]] = {}
        self.stem_cells = stem_cells
        self._stems: dict[StemKind, list[Stem]] = {}
        self._making: dict[StemKind, int] = {}
        self._broken: set[StemKind] = set()  # pre-started runtimes that failed to start: not tried again
        self._forks_ok: bool | None = None
        # with none ready, wait for a pre-started runtime rather than start one directly (makes the path
        # certain, for tests of it)
        self.await_standby = await_standby
        self._stem_count = 0
        self._closed = False
        self._slot_batch: asyncio.Future[None] | None = None  # slots being made in a worker thread
        self._slot_waiters = 0
        self.cpus = os.cpu_count() or 1
        self._tasks: set[asyncio.Task[None]] = set()
        # who owns background work: the server passes its supervisor's spawn
        self.spawn: Callable[[Coroutine[Any, Any, None], str], Any] | None = None
        self.scratch = (
            (data_dir / "environments" / "stems")
            if data_dir
            else Path(tempfile.mkdtemp(prefix="shoal-stems-"))
        )
        self.uids = UidAllocator.parse(uid_range)
        self.network = network
        self.cpu_floor = cpu_floor
        self.favor_dynmods = favor_dynmods

    @property
    def private_network(self) -> bool:
        return not self.network

    def task_root(self, spec: SandboxSpec) -> str:
        return TASK_ROOT

    def sandbox_path(self, spec: SandboxSpec, host_path: Path, inside: str) -> str:
        return inside

    def new_identity(self) -> int:
        return self.uids.take()

    def runtime_api_address(self) -> str | None:
        """The Runtime API address functions use when they have their own network namespace."""
        return PRIVATE_RUNTIME_API if self.private_network else None

    def prepare(self, slots: int) -> None:
        """Start-up (worker thread): clean what a crash left, then pre-create cgroup slots."""
        self.cgroups.cleanup_stale()
        shutil.rmtree(self.scratch, ignore_errors=True)  # before a daemon takes its workspace there
        self.cgroups.prepare(slots)
        become_subreaper()
        if None not in self._daemons:
            self._start_daemon(None)
        self._prepared = True

    def release(self, slot: Slot, uid: int) -> None:
        self.cgroups.give_back(slot)
        self.uids.give_back(uid)

    # ---- the launcher daemon -----------------------------------------------------------------------

    def _start_daemon(self, key: tuple[str, str] | None) -> tuple[subprocess.Popen[bytes], socket.socket]:
        """Start a launcher daemon: the exec launcher (``key`` None, the server's interpreter), or a zygote
        of one runtime interpreter with its bootstrap preloaded (``key`` = (interpreter, bootstrap))."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        interpreter = os.path.realpath(sys.executable) if key is None else key[0]
        workspace = self.scratch / "templates"  # where, in its own mount namespace, it keeps stems' roots
        workspace.mkdir(parents=True, exist_ok=True)
        argv = [interpreter, "-I", "-S", str(LAUNCHER), "--serve", str(theirs.fileno())]
        argv += ["--workspace", str(workspace)]
        if self.favor_dynmods:
            argv += ["--favor-dynmods", "1"]
        if key is not None:
            argv += ["--preload", key[1]]
        process = subprocess.Popen(
            argv,
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            close_fds=True,
            env=daemon_environment(),
            cwd="/",
        )
        theirs.close()
        self._daemons[key] = (process, ours)
        return process, ours

    def _send(self, key: tuple[str, str] | None, fds: list[int], kind: bytes = b"") -> None:
        """A request to the daemon ``key``: the descriptors, and ``kind`` (a stem's shared root, which the
        daemon builds once per kind and every stem of it copies)."""
        message = (b"H" if self.network else b"R") + kind
        for attempt in range(2):
            daemon = self._daemons.get(key)
            if daemon is None or daemon[0].poll() is not None:
                daemon = self._start_daemon(key)
            try:
                socket.send_fds(daemon[1], [message], fds)
                return
            except OSError:
                daemon[1].close()
                del self._daemons[key]
                if attempt:
                    raise

    async def start(self, spec: SandboxSpec) -> SandboxProcess:
        """Specialise a stem cell of this kind of environment (made ahead of time when possible) into the
        environment ``spec`` describes."""
        if spec.uid is None:
            raise ValueError("the namespace backend needs spec.uid (from new_identity)")
        if not self._prepared:
            await asyncio.to_thread(self.prepare, 0)
        # the runtime's directories are the same for every environment of the kind: bound in its stems ahead
        # of time; the function's own (its code, its layers' /opt) when one becomes its environment
        base = tuple((str(host), inside) for host, inside in spec.extra_ro_binds if inside not in GRAFTED)
        binds = [(str(spec.code_dir), TASK_ROOT)]
        binds += [(str(host), inside) for host, inside in spec.extra_ro_binds if inside in GRAFTED]
        if spec.standby is not None:
            specialised = await self._specialise(spec, base, binds)
            if specialised is not None:
                return specialised
        kind = StemKind(spec.preload, base)
        ready = self._stems.get(kind)
        stem = ready.pop() if ready else await self._new_stem(kind)
        fields = _handover(stem, spec, spec.uid, binds)
        fields.update(
            zygote=spec.preload is not None,
            argv=spec.argv,
            extensions=list(spec.extensions),
            nofile=MAX_FDS,
            nproc=MAX_PROCS,
        )
        process = self._environment(stem, kind, spec, spec.uid)
        try:
            _send_request(stem.report, fields)
            lines, _ = await _read_report(stem.report, _until_eof)  # EOF: exec'd, or running preloaded
        except BaseException:
            await process.destroy()
            raise
        finally:
            stem.report.close()
        errors = [int(line[1:]) for line in lines if line.startswith(b"X")]
        if errors:
            await process.destroy()  # reap PID 1 and give its slot and uid back
            raise OSError(errors[0], os.strerror(errors[0]), spec.argv[0])
        return process

    async def _specialise(
        self, spec: SandboxSpec, base: tuple[tuple[str, str], ...], binds: list[tuple[str, str]]
    ) -> NamespaceProcess | None:
        """Hand a ready pre-started runtime of this kind the function's directories, limits and environment;
        None when none is ready (the caller starts the runtime itself, and ready ones are made meanwhile)."""
        kind = StemKind(None, base, spec.standby)
        if kind in self._broken:
            return None
        ready = self._stems.get(kind, [])
        stem = None
        while ready and stem is None:
            candidate = ready.pop()
            if _alive(candidate.pid):
                stem = candidate
            else:
                await asyncio.to_thread(_discard_stem, candidate, self.cgroups, self.uids)
        if stem is None and self.await_standby:
            try:
                stem = await self._new_stem(kind)
            except Exception as exc:
                self._standby_failed(kind, exc)
        if stem is None or stem.uid is None:
            self._replenish(kind)  # for the next environment of the kind
            return None
        said = _pending_output(stem.out_r)  # what it printed while it stood by is not the function's
        if said:
            log.info("a pre-started %s said, before its function: %s", stem_program(kind), said)
        if spec.admit is not None:
            spec.admit(stem.uid)
        if spec.uid is not None and spec.uid != stem.uid:
            self.uids.give_back(spec.uid)  # the environment is the stem's identity from here on
        process = self._environment(stem, kind, spec, stem.uid, report=stem.report)
        try:
            _send_request(stem.report, _handover(stem, spec, stem.uid, binds))
            # ``G``: the runtime has its environment. Without it init failed and exits (125, reason in the
            # environment's log), which the caller sees as the runtime's exit.
            lines, _ = await _read_report(stem.report, lambda lines, fds: b"G" in lines)
        except BaseException:
            await process.destroy()
            raise
        process.early = [line for line in lines if line.startswith(b"W")]
        return process

    def _environment(
        self, stem: Stem, kind: StemKind, spec: SandboxSpec, uid: int, report: socket.socket | None = None
    ) -> NamespaceProcess:
        """The environment ``stem`` becomes; its kind's stems are topped up once its start is over."""
        return NamespaceProcess(
            stem.pid,
            stem.out_r,
            stem.work_dir,
            self,
            stem.slot,
            uid,
            spec.memory_mb,
            stem.listener,
            report=report,
            started=functools.partial(self._replenish, kind),
        )

    # ---- stem cells ------------------------------------------------------------------------------------

    async def _new_stem(self, kind: StemKind, ahead: bool = False) -> Stem:
        """Fork a stem cell: namespaces, cgroup membership and the shared part of its root, made ahead; for
        a kind with a standby runtime, that runtime too, started as the stem's own uid. A stem made
        ``ahead`` of the start that takes it (not for a start waiting now) also copies, while it waits, the
        fork-server's pages its start would copy on write: off that start's path, where copying them ahead
        would cost a waiting start more than faulting them as they are written."""
        slot = await self.take_slot()
        self._stem_count += 1
        work_dir = self.scratch / f"stem-{os.getpid()}-{self._stem_count}"
        root = work_dir / "root"  # made by the launcher if the stem builds its own (none copied)
        uid = self.uids.take() if kind.standby is not None else None
        fields: dict[str, Any] = {
            "stem": kind.standby is None,
            "root": str(root),
            "base_binds": list(kind.base),
            "network": self.network,
            "cgroup_procs": slot.procs_files,
            "stem_tmp_mb": STEM_TMP_MB,
            "mountpoints": list(GRAFTED),
            "copy_ahead": ahead,
        }
        if kind.standby is not None:
            fields.update(
                standby=True,
                argv=list(kind.standby.argv),
                env=dict(kind.standby.env),
                binds=[],
                cwd=TASK_ROOT,
                tmp_mb=STEM_TMP_MB,
                uid=uid,
                gid=uid,
                nofile=MAX_FDS,
                nproc=MAX_PROCS,
            )
        out_r, out_w = os.pipe()
        report, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        need_listener = self.private_network

        def complete(lines: list[bytes], fds: list[int]) -> bool:
            started = b"S" in lines and bool(_reported_pid(lines))
            return started and (bool(fds) or not need_listener)

        lines: list[bytes] = []
        fds: list[int] = []
        sent = False
        try:
            try:
                self._send(kind.preload, [out_w, theirs.fileno()], kind.shared_root())
                _send_request(report, fields)
                sent = True
            finally:
                os.close(out_w)
                theirs.close()
            await _read_report(report, complete, lines, fds)
            if not complete(lines, fds):
                said = _pending_output(out_r)
                raise RuntimeError(
                    "the sandbox launcher could not prepare an environment"
                    + (f": {said}" if said else "; see the server log")
                )
        except BaseException:
            os.close(out_r)
            for fd in fds:
                os.close(fd)
            # the stem (our child) is ended and reaped, not left a zombie, even when this start is cancelled
            await asyncio.to_thread(_abandon_stem, report, lines if sent else None)
            await asyncio.to_thread(self.cgroups.give_back, slot)
            if uid is not None:
                self.uids.give_back(uid)
            await asyncio.to_thread(shutil.rmtree, work_dir, True)
            raise
        pid = _reported_pid(lines)
        listener = socket.socket(fileno=fds[0]) if fds else None
        os.set_blocking(out_r, False)
        return Stem(pid, out_r, report, slot, listener, work_dir, uid)

    async def take_slot(self) -> Slot:
        """A cgroup slot: a free one, or one of a batch made in a worker thread, as many as starts are
        waiting for one then (up to ``SLOT_BATCH_MAX``). A burst's starts share a few hops instead of one
        each: a hop is a thread's wake-up and a GIL hand-over, ~0.1 ms of the loop's time under load. One
        batch is made at a time, and a start cancelled meanwhile leaves it running: its slots stay free."""
        self._slot_waiters += 1
        try:
            while self.cgroups.empty:
                if self._slot_batch is None or self._slot_batch.done():
                    n = min(SLOT_BATCH_MAX, self._slot_waiters)
                    self._slot_batch = asyncio.ensure_future(asyncio.to_thread(self.cgroups.prepare, n))
                    self._slot_batch.add_done_callback(_retrieved)  # its failure reaches its waiters
                await asyncio.shield(self._slot_batch)
            return self.cgroups.take()  # not empty, and nothing awaited since looking
        finally:
            self._slot_waiters -= 1

    def _replenish(self, kind: StemKind) -> None:
        """Keep ``stem_cells`` stems of this kind ready, made in the background."""
        if self._closed:
            return
        missing = self.stem_cells - len(self._stems.get(kind, [])) - self._making.get(kind, 0)
        for _ in range(max(0, missing)):
            self._making[kind] = self._making.get(kind, 0) + 1
            self._spawn(self._make_stem(kind), "stem-cell")

    async def _make_stem(self, kind: StemKind) -> None:
        try:
            stem = await self._new_stem(kind, ahead=True)
        except Exception as exc:
            if kind.standby is None:
                raise
            self._standby_failed(kind, exc)
            return
        finally:
            self._making[kind] -= 1
        if self._closed:
            await asyncio.to_thread(_discard_stem, stem, self.cgroups, self.uids)
            return
        self._stems.setdefault(kind, []).append(stem)

    def _standby_failed(self, kind: StemKind, exc: Exception) -> None:
        """Environments of this kind start their runtime themselves from now on."""
        self._broken.add(kind)
        log.warning("pre-started %s runtimes are off: %s", stem_program(kind), exc)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        if self.spawn is not None:
            self.spawn(coro, name)
            return
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def adopts_forks(self) -> bool:
        """Copies forked from a snapshot can be isolated: they reach the server's abstract socket through the
        network namespace they share with it, and may make user namespaces (probed once)."""
        if self._forks_ok is None:
            self._forks_ok = not self.private_network and forks_isolatable()
        return self._forks_ok

    def fork_adoption(self) -> ForkAdoption | None:
        return ForkAdoption(self, MAX_PROCS) if self.adopts_forks else None

    def cleanup_stale(self, root: Path) -> None:
        """All of ``root`` but this backend's scratch, which :meth:`prepare` cleaned before a launcher daemon
        made its workspace there."""
        if not root.is_dir():
            return
        for child in root.iterdir():
            if child != self.scratch:
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)

    def close(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for stems in self._stems.values():
            for stem in stems:
                _discard_stem(stem, self.cgroups, self.uids)
        self._stems.clear()
        for process, control in self._daemons.values():
            control.close()  # a daemon ends when its control socket closes
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._daemons.clear()
        self.cgroups.close()


@dataclass
class Stem:
    """A prepared environment waiting for its specialisation: PID 1 of its namespaces, in its cgroup."""

    pid: int
    out_r: int
    report: socket.socket
    slot: Slot
    listener: socket.socket | None
    work_dir: Path
    uid: int | None = None  # a stem with a pre-started runtime already runs it as this uid


class StemKind(NamedTuple):
    """What makes stems interchangeable."""

    preload: tuple[str, str] | None  # the fork-server (interpreter, bootstrap) PID 1 comes from
    base: tuple[tuple[str, str], ...]  # binds shared by every environment of the kind
    standby: Standby | None = None  # the pre-started runtime

    def shared_root(self) -> bytes:
        """What the launcher daemon builds the kind's shared root from, once (``marshal`` bytes); empty for
        stems with a pre-started runtime, which build their own (they create entries in it)."""
        if self.standby is not None:
            return b""
        return marshal.dumps((list(self.base), list(GRAFTED)), MARSHAL_FORMAT)


def stem_program(kind: StemKind) -> str:
    return kind.standby.argv[0] if kind.standby is not None else "?"


def _alive(pid: int) -> bool:
    """Whether a stem's PID 1 (our child: the server is a subreaper) still runs; reaps it if not."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == 0
    except ChildProcessError:
        return False


def _end(pid: int) -> None:
    """Kill and reap a stem's PID 1 (the server's child)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _discard_stem(stem: Stem, cgroups: CgroupPool, uids: UidAllocator) -> None:
    _end(stem.pid)
    stem.report.close()
    os.close(stem.out_r)
    if stem.listener is not None:
        stem.listener.close()
    cgroups.give_back(stem.slot)
    if stem.uid is not None:
        uids.give_back(stem.uid)
    shutil.rmtree(stem.work_dir, ignore_errors=True)


def _pending_output(fd: int) -> str:
    """What a stem that failed wrote (its output pipe has no reader until it becomes an environment)."""
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 1 << 16).decode(errors="replace").strip()[-2000:]
    except OSError:
        return ""


def _handover(stem: Stem, spec: SandboxSpec, uid: int, binds: list[tuple[str, str]]) -> dict[str, Any]:
    """What every stem is told when it becomes an environment: the function's variables and directories, its
    /tmp size, its uid and its cgroup limits."""
    return {
        "env": spec.env,
        "binds": binds,
        "tmp_mb": spec.ephemeral_mb,
        "cwd": TASK_ROOT,
        "uid": uid,
        "gid": uid,
        "cgroup_limits": stem.slot.limit_writes(spec.memory_mb, MAX_PROCS),
    }


def _send_request(sock: socket.socket, fields: dict[str, Any]) -> None:
    """One request to the launcher: its length, then ``marshal`` bytes (the launcher needs no ``json``)."""
    request = marshal.dumps(fields, MARSHAL_FORMAT)
    sock.sendall(len(request).to_bytes(4, "big") + request)


def _until_eof(lines: list[bytes], fds: list[int]) -> bool:
    return False


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a shared future's exception as seen: its waiters got it, or were cancelled and do not care."""
    if not future.cancelled():
        future.exception()


def _abandon_stem(report: socket.socket, lines: list[bytes] | None) -> None:
    """A stem whose making failed or was given up (worker thread): kill and reap its PID 1 — the server's
    child — and close its report socket. ``lines``: what was read of its report, None if no request went out.
    Its pid may not have been read yet: it comes first, right after the daemon's ``clone`` (waited for up
    to 2 s)."""
    pid = _reported_pid(lines or [])
    if not pid and lines is not None:
        report.setblocking(True)
        report.settimeout(2.0)
        buffer = b""
        with contextlib.suppress(OSError):
            while not pid:
                data = report.recv(256)
                if not data:
                    break
                buffer += data
                pid = _reported_pid(buffer.split(b"\n")[:-1])  # (whole lines only)
    report.close()
    if pid:
        _end(pid)


def _reported_pid(lines: list[bytes]) -> int:
    """The pid of PID 1 in the launcher's report (its ``P<pid>`` line), or 0."""
    return next((int(line[1:]) for line in lines if line.startswith(b"P")), 0)


async def _read_report(
    sock: socket.socket,
    done: Callable[[list[bytes], list[int]], bool],
    lines: list[bytes] | None = None,
    fds: list[int] | None = None,
) -> tuple[list[bytes], list[int]]:
    """Read the launcher's report lines (``P<pid>``, ``S``, ``X<errno>``) and passed descriptors until
    ``done`` says so or the other end closes (a successful exec closes it). Into ``lines`` and ``fds`` when
    given, so a caller that is cancelled still knows what was read."""
    sock.setblocking(False)
    lines = [] if lines is None else lines
    fds = [] if fds is None else fds
    buffer = b""
    while not done(lines, fds):
        data, passed = await _recv_report(sock)
        fds.extend(passed)
        if not data and not passed:
            break
        buffer += data
        while b"\n" in buffer:
            line, _, buffer = buffer.partition(b"\n")
            lines.append(line)
    return lines, fds


async def _recv_report(sock: socket.socket) -> tuple[bytes, list[int]]:
    """One ``recvmsg`` without blocking the loop: (bytes, passed file descriptors)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            msg, ancdata, _, _ = sock.recvmsg(64, socket.CMSG_LEN(4))
            break
        except BlockingIOError:
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(sock.fileno(), ready.set_result, None)
            try:
                await ready
            finally:
                loop.remove_reader(sock.fileno())
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.extend(
                int.from_bytes(data[i : i + 4], sys.byteorder) for i in range(0, len(data) - len(data) % 4, 4)
            )
    return msg, fds

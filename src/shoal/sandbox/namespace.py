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
import marshal
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from shoal.sandbox.base import SandboxProcess, SandboxSpec
from shoal.sandbox.cgroups import CgroupPool, CgroupUnavailable, Slot, cpu_quota_us
from shoal.sandbox.uids import UidAllocator

LAUNCHER = Path(__file__).with_name("launcher.py")
TASK_ROOT = "/var/task"
PRIVATE_RUNTIME_API = "127.0.0.1:9001"
MAX_FDS = 1024
MAX_PROCS = 1024
PR_SET_CHILD_SUBREAPER = 36


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


def become_subreaper() -> None:
    """Orphaned environment processes (the launcher exits after forking) are re-parented to this process."""
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
    ) -> None:
        super().__init__(pid, output_fd, work_dir)
        self.backend = backend
        self.slot = slot
        self.uid = uid
        self.own_uid = uid
        self.memory_mb = memory_mb
        self.listener = listener
        self._oom_baseline = slot.oom_kills()
        self._released = False

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

    async def after_init(self) -> None:
        """INIT ran with the CPU boost AWS gives it; from the first invoke on, the quota applies."""
        quota = cpu_quota_us(self.memory_mb, self.backend.cpu_floor, os.cpu_count() or 1)
        await asyncio.to_thread(self.slot.set_cpu_quota, quota)

    async def destroy(self, grace: float = 0.0) -> None:
        self.thaw()  # a stopped process does not act on SIGTERM
        await super().destroy(grace)
        if not self._released:
            self._released = True
            await asyncio.to_thread(self.backend.release, self.slot, self.own_uid)
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
    ) -> None:
        self.cgroups = CgroupPool.for_data_dir(data_dir) if data_dir else CgroupPool(f"pid{os.getpid()}")
        self._prepared = False
        self._daemons: dict[tuple[str, str] | None, tuple[subprocess.Popen[bytes], socket.socket]] = {}
        self.uids = UidAllocator.parse(uid_range)
        self.network = network
        self.cpu_floor = cpu_floor

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
        argv = [interpreter, "-I", "-S", str(LAUNCHER), "--serve", str(theirs.fileno())]
        if key is not None:
            argv += ["--preload", key[1]]
        process = subprocess.Popen(
            argv, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, close_fds=True
        )
        theirs.close()
        self._daemons[key] = (process, ours)
        return process, ours

    def _send(self, key: tuple[str, str] | None, fds: list[int]) -> None:
        for attempt in range(2):
            daemon = self._daemons.get(key)
            if daemon is None or daemon[0].poll() is not None:
                daemon = self._start_daemon(key)
            try:
                socket.send_fds(daemon[1], [b"R"], fds)
                return
            except OSError:
                daemon[1].close()
                del self._daemons[key]
                if attempt:
                    raise

    async def start(self, spec: SandboxSpec) -> SandboxProcess:
        if spec.uid is None:
            raise ValueError("the namespace backend needs spec.uid (from new_identity)")
        if not self._prepared:
            await asyncio.to_thread(self.prepare, 0)
        slot = await asyncio.to_thread(self.cgroups.take) if self.cgroups.empty else self.cgroups.take()
        root = spec.work_dir / "root"
        root.mkdir(parents=True, exist_ok=True)
        binds = [(str(spec.code_dir), TASK_ROOT)]
        binds += [(str(host), inside) for host, inside in spec.extra_ro_binds]
        request = marshal.dumps(
            {
                "zygote": spec.preload is not None,
                "argv": spec.argv,
                "env": spec.env,
                "binds": binds,
                "tmp_mb": spec.ephemeral_mb,
                "cwd": TASK_ROOT,
                "root": str(root),
                "uid": spec.uid,
                "gid": spec.uid,
                "network": self.network,
                "cgroup_limits": slot.limit_writes(spec.memory_mb, MAX_PROCS),
                "cgroup_procs": slot.procs_files(),
                "nofile": MAX_FDS,
                "nproc": MAX_PROCS,
            },
            4,  # a format every supported interpreter reads
        )
        out_r, out_w = os.pipe()
        report, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._send(spec.preload, [out_w, theirs.fileno()])
            report.sendall(len(request).to_bytes(4, "big") + request)  # read by the daemon's child
        except BaseException:
            os.close(out_r)
            report.close()
            await asyncio.to_thread(self.release, slot, spec.uid)
            raise
        finally:
            os.close(out_w)
            theirs.close()
        try:
            pid, listener, exec_errno = await self._read_report(report)
        except BaseException:
            os.close(out_r)
            await asyncio.to_thread(self.release, slot, spec.uid)
            raise
        finally:
            report.close()
        os.set_blocking(out_r, False)
        process = NamespaceProcess(pid, out_r, spec.work_dir, self, slot, spec.uid, spec.memory_mb, listener)
        if exec_errno is not None:
            await process.destroy()  # reap PID 1 and give its slot and uid back
            os.close(out_r)
            raise OSError(exec_errno, os.strerror(exec_errno), spec.argv[0])
        return process

    async def _read_report(self, sock: socket.socket) -> tuple[int, socket.socket | None, int | None]:
        """Read the launcher's report until EOF (the runtime's successful exec closes it): ``P<pid>``, with a
        private network PID 1's listener, and ``X<errno>`` when the runtime could not be executed."""
        sock.setblocking(False)
        pid: int | None = None
        listener: socket.socket | None = None
        exec_errno: int | None = None
        buffer = b""
        while True:
            data, fds = await _recv_report(sock)
            if fds:
                listener = socket.socket(fileno=fds[0])
            if not data and not fds:
                break
            buffer += data
            while b"\n" in buffer:
                line, _, buffer = buffer.partition(b"\n")
                if line.startswith(b"P"):
                    pid = int(line[1:])
                elif line.startswith(b"X"):
                    exec_errno = int(line[1:])
        if pid is None:
            raise RuntimeError("the sandbox launcher could not start the environment; see the function's log")
        return pid, listener, exec_errno

    def cleanup_stale(self, root: Path) -> None:
        shutil.rmtree(root, ignore_errors=True)

    def close(self) -> None:
        for process, control in self._daemons.values():
            control.close()  # a daemon ends when its control socket closes
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._daemons.clear()
        self.cgroups.close()


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

"""The privileged launcher: set up one environment's isolation, then exec its runtime.

A separate program that imports only the standard library and nothing from ``shoal``; the server never
calls ``unshare`` or ``mount``, and writes no cgroup file on its event loop but a slot's CPU quota. It runs
as a small daemon (``python -I -S launcher.py --serve FD``, FD being its control socket), started once, so
that a new environment costs a fork instead of an interpreter start (~25 ms here). For each request (the spec
as ``marshal`` bytes, which is built in where ``json`` would cost ~19 ms of import, plus the environment's
output pipe and report socket as file descriptors) it forks, with one ``clone``, PID 1 of new mount, PID,
IPC and UTS namespaces (and network when the function has no network) as a child of the server (a sibling
of the daemon, ``CLONE_PARENT``: no intermediate process to fork and tear down), reports its pid
(``P<pid>``) on the report socket and goes back to its requests. PID 1 reads its spec from the report
socket, writes the cgroup limits, joins the cgroups, builds a minimal root (a tmpfs with read-only binds of
the system directories, ``/var/task``, ``/var/runtime`` and the runtime's own directories, a fresh
``/proc``, a small ``/dev``, a private ``/tmp`` of ``EphemeralStorage`` size), ``pivot_root``s into it,
drops to the environment's own uid/gid with no supplementary groups, sets ``no_new_privs`` and the rlimits,
and ``exec``s the runtime. A stem cell (PID 1 made ahead of its function) does not build the shared part
of that root: the daemon keeps one per kind of stem, built once (under ``--workspace``) as the root of a
mount namespace that holds nothing else; the stem enters that namespace and unshares a copy of it, so it
starts inside its root with no ``pivot_root`` of its own.

A set-up failure in PID 1 exits 125 with the reason on stderr (the environment's log). ``--probe ROOT``
checks that the host allows all of this.
"""

from __future__ import annotations

import ctypes
import marshal
import os
import sys

TYPE_CHECKING = False  # not typing's: importing typing costs the launcher milliseconds at every start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_PARENT = 0x00008000
CLONE_CHILD_SETTID = 0x01000000
SIGCHLD = 17
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1
SIGKILL = 9
MAX_REQUEST = 1 << 20
MAX_CONTROL = 1 << 16  # a daemon request: its flags and a stem kind's shared binds
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine, 155)
SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(os.uname().machine, 56)
SYS_OPEN_TREE = 428  # the same number on every architecture (Linux 5.2)
SYS_MOVE_MOUNT = 429
OPEN_TREE_CLONE = 1
O_CLOEXEC = 0o2000000
AT_RECURSIVE = 0x8000
AT_FDCWD = -100
MOVE_MOUNT_F_EMPTY_PATH = 4
RLIMIT_NOFILE = 7
RLIMIT_NPROC = 6
RLIMIT_CORE = 4

SYSTEM_DIRS = ("usr", "lib", "lib32", "lib64", "libx32", "bin", "sbin", "etc")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")

_libc = ctypes.CDLL(None, use_errno=True)
_held = ctypes.PyDLL(None, use_errno=True)  # calls that keep the GIL (clone: the child must find it held)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


class _Rlimit(ctypes.Structure):
    _fields_ = [("cur", ctypes.c_ulong), ("max", ctypes.c_ulong)]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def _bind(source: str, target: str, readonly: bool = True) -> None:
    _mount(source, target, None, MS_BIND | MS_REC)
    if readonly:
        _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _mkdirs(root: str, inside: str) -> str:
    target = root + inside
    os.makedirs(target, mode=0o755, exist_ok=True)
    return target


def _build_base(spec: dict) -> None:  # type: ignore[type-arg]
    """The part of the root every environment of this kind shares: system directories, the runtime's own
    directories (``base_binds``), ``/dev``, ``/proc``. A stem cell does this ahead of time."""
    root = spec["root"]
    os.makedirs(root, 0o700, exist_ok=True)
    _build_shared(root, spec.get("base_binds", ()))
    _own_parts(root, spec.get("stem_tmp_mb"))


def _own_parts(root: str, stem_tmp_mb: int | None) -> None:
    """What no two environments share: ``/dev/shm``, a ``/proc`` of the new PID namespace and, for a stem,
    ``/tmp`` at the usual size (resized if its function's differs)."""
    _mount("tmpfs", _mkdirs(root, "/dev/shm"), "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
    _mount("proc", _mkdirs(root, "/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if stem_tmp_mb is not None:
        _mount("tmpfs", _mkdirs(root, "/tmp"), "tmpfs", MS_NOSUID | MS_NODEV, _tmp_options(stem_tmp_mb))


def _build_shared(root: str, base_binds: Iterable[tuple[str, str]]) -> None:
    """A root's parts that no environment writes: a tmpfs with the system directories and ``base_binds``
    bound read-only, and ``/dev`` (its devices bound from the host's)."""
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=755")
    for name in SYSTEM_DIRS:
        host = "/" + name
        if os.path.islink(host):
            os.symlink(os.readlink(host), root + host)
        elif os.path.isdir(host):
            _bind(host, _mkdirs(root, host))
    for host, inside in base_binds:
        if os.path.isdir(host):
            _bind(host, _mkdirs(root, inside))
    dev = _mkdirs(root, "/dev")
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755")
    for name in DEVICES:
        if os.path.exists("/dev/" + name):
            open(dev + "/" + name, "w").close()
            _mount("/dev/" + name, dev + "/" + name, None, MS_BIND)
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, dev + "/" + name)


def _make_template(where: str, base_binds: Iterable[tuple[str, str]], mountpoints: Iterable[str]) -> None:
    """The root every stem of a kind shares, sealed read-only, with empty directories where each stem mounts
    its own ``/proc``, ``/tmp`` and ``/dev/shm`` and where its function's directories are grafted. Each stem
    copies it (a copy of its mounts, not a build): see :func:`_template_namespace`."""
    os.mkdir(where, 0o755)
    _build_shared(where, base_binds)
    for inside in ("/proc", "/tmp", "/dev/shm", *mountpoints):
        _mkdirs(where, inside)
    _mount(None, where + "/dev", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC)
    _mount(None, where, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4m,mode=755")


def _template_namespace(where: str, base_binds: Iterable[tuple[str, str]], mountpoints: Iterable[str]) -> int:
    """A mount namespace whose root is a kind's shared root (:func:`_make_template`) and nothing else: the
    daemon makes it once, from its own, and comes back. A stem enters it and unshares (:func:`_child`): it
    copies just that root and is inside it. A stem that ``pivot_root``ed into a copy of the daemon's
    namespace instead paid a walk of every process on the host (``chroot_fs_refs``: ~2 % of a burst's CPU
    with 500 environments alive, and growing with them), copying and then detaching the daemon's other
    mounts (an expedited RCU grace period). Answers the namespace's descriptor; raises with the daemon back
    in its own namespace."""
    own = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    try:
        _check(_libc.unshare(CLONE_NEWNS), "unshare")
        try:
            namespace = os.open("/proc/self/ns/mnt", os.O_RDONLY)
            try:
                _make_template(where, base_binds, mountpoints)
                _pivot(where)
            except BaseException:
                os.close(namespace)
                raise
        finally:
            _check(_libc.setns(own, CLONE_NEWNS), "setns(daemon)")
    finally:
        os.close(own)
    return namespace


def _enter_template(spec: dict) -> None:  # type: ignore[type-arg]
    """A stem started inside its copy of its kind's shared root (:func:`_template_namespace`, sealed
    already): its own parts on it."""
    _own_parts("", spec["stem_tmp_mb"])
    _copy_ahead()


def _copy_ahead() -> None:
    """Calls whose first use in a child writes (copies) pages of the daemon's memory that a start writes
    too — a stem that builds its root makes them on the way; one that copies its kind's makes them here, not
    on its start's path (~30 page faults per start)."""
    os.path.isdir("/usr")
    os.path.islink("/bin")
    os.makedirs("/proc", exist_ok=True)
    open("/dev/null", "w").close()


def _tmp_options(size_mb: int) -> str:
    return f"size={int(size_mb)}m,mode=1777"


def _size_tmp(path: str, spec: dict) -> None:  # type: ignore[type-arg]
    """``/tmp`` at the size the environment's ``EphemeralStorage`` says: mounted, or resized if its stem made
    it at another size."""
    if "stem_tmp_mb" not in spec:
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, _tmp_options(spec["tmp_mb"]))
    elif int(spec["tmp_mb"]) != int(spec["stem_tmp_mb"]):
        _mount(None, path, None, MS_REMOUNT | MS_NOSUID | MS_NODEV, _tmp_options(spec["tmp_mb"]))


def _finish_root(spec: dict) -> None:  # type: ignore[type-arg]
    """The environment's own part: its code and bootstrap, its ``/tmp``; then seal and enter the root."""
    root = spec["root"]
    for host, inside in spec["binds"]:
        if os.path.isdir(host):
            _bind(host, _mkdirs(root, inside))
    tmp = _mkdirs(root, "/tmp")
    _size_tmp(tmp, spec)
    os.chown(tmp, spec["uid"], spec["gid"])
    _enter(root)


def _enter(root: str) -> None:
    """Seal the root read-only and make it this process's own (:func:`_pivot`)."""
    _mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4m,mode=755")
    _pivot(root)


def _pivot(root: str) -> None:
    """Make ``root`` this process's root: ``pivot_root``, the old root detached."""
    os.chdir(root)
    _check(_libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")  # old root stacked on the new one
    _check(_libc.umount2(b".", MNT_DETACH), "umount old root")  # ... and detached: only the new root is left
    os.chdir("/")


def _seal_ahead(spec: dict) -> None:  # type: ignore[type-arg]
    """A stem cell's root, entered before its function is known: the function's directories are empty
    mount points, grafted in when the stem is specialised (:func:`_specialise_root`)."""
    root = spec["root"]
    for inside in spec["mountpoints"]:
        _mkdirs(root, inside)
    _enter(root)


def _specialise_root(spec: dict, standing_in: str | None = None) -> None:  # type: ignore[type-arg]
    """Give a sealed root its function: the limits and directories (:func:`_graft`), ``/tmp`` at the size
    and owner the environment's."""
    _graft(spec, standing_in)
    _size_tmp("/tmp", spec)
    os.chown("/tmp", spec["uid"], spec["gid"])


def _loopback_up() -> None:
    import fcntl
    import socket
    import struct

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifreq = struct.pack("16sH14s", b"lo", 0x1 | 0x40, b"")  # IFF_UP | IFF_RUNNING
        fcntl.ioctl(sock.fileno(), 0x8914, ifreq)  # SIOCSIFFLAGS
    finally:
        sock.close()


def _send_listener(report: int) -> None:
    """Create the Runtime API's listening socket inside this network namespace and hand it to the server."""
    import socket

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 9001))
    listener.listen(16)
    channel = socket.socket(fileno=os.dup(report))
    try:
        socket.send_fds(channel, [b"L\n"], [listener.fileno()])
    finally:
        channel.close()
        listener.close()


def _child(spec: dict) -> None:  # type: ignore[type-arg]
    """PID 1 of the new namespace: finish isolation and exec. Never returns."""
    os.setsid()
    report = spec["report_fd"]
    for path in spec["cgroup_procs"]:
        _write(path, "0")  # join: only the runtime's memory is charged from here on
    if spec.get("copy_ahead"):  # (a no-op but in a fork-server, whose stems run no other runtime)
        _copy_written()
    template = spec.get("template")  # its kind's shared root: a mount namespace's descriptor
    if template is not None:  # into a copy of it, from the daemon's namespace (the clone made none)
        _check(_libc.setns(template, CLONE_NEWNS), "setns(template)")
        os.close(template)
        _check(_libc.unshare(CLONE_NEWNS), "unshare")
    else:  # (a copy of the daemon's own namespace is private already)
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
    if not spec["network"]:
        _loopback_up()
        _send_listener(report)
    os.set_inheritable(report, False)  # closed by a successful exec: the server reads EOF
    if template is not None:
        _enter_template(spec)
    else:
        _build_base(spec)
    if spec.get("standby"):
        _standby(spec, report)
    if spec.get("stem"):  # a stem cell: wait, its root entered, for the environment it will become
        if template is None:
            _seal_ahead(spec)
        os.write(report, b"S\n")
        spec = {**spec, **_read_spec(report)}
        _specialise_root(spec)
    else:
        _finish_root(spec)
    _drop_privileges(spec)
    os.chdir(spec["cwd"])
    for path in spec.get("extensions", ()):
        _start_extension(path, spec["env"])
    if spec.get("zygote"):
        _run_preloaded(spec, report)
    argv = spec["argv"]
    try:
        os.execve(argv[0], argv, spec["env"])
    except OSError as exc:  # tell the server why the runtime could not be executed
        os.write(report, f"X{exc.errno}\n".encode())
        os._exit(127)


def _drop_privileges(spec: dict) -> None:  # type: ignore[type-arg]
    """Become the environment's own user: its uid/gid, no supplementary groups, ``no_new_privs``, rlimits."""
    name = b"localhost"
    _libc.sethostname(name, len(name))
    os.setgroups([])
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    for resource, value in ((RLIMIT_NOFILE, spec["nofile"]), (RLIMIT_NPROC, spec["nproc"]), (RLIMIT_CORE, 0)):
        limit = _Rlimit(value, value)
        _check(_libc.setrlimit(resource, ctypes.byref(limit)), "setrlimit")


def _standby(spec: dict, report: int) -> None:  # type: ignore[type-arg]
    """PID 1 of a stem cell with a pre-started runtime. Never returns.

    The root is sealed without the function's parts (``/var/task`` an empty directory, ``/opt`` an empty
    mount point, ``/tmp`` a default-size tmpfs) and a generic runtime process is started in ``/var/task`` as
    the environment's uid, reading descriptor 3 and writing descriptor 4. Once it says it is ready (``R``),
    PID 1 reports ``S`` and waits for the specialisation: it writes the cgroup limits, grafts the function's
    directories in from the host's mount namespace (:func:`_graft`), resizes ``/tmp``, writes the runtime its
    environment as JSON, drops to the environment's uid and stays as the namespace's init until the runtime
    exits; then it reports the runtime's wait status (``W<status>``) and exits.
    """
    import json
    import select

    _seal_ahead(spec)
    to_runtime, from_us = os.pipe()
    to_us, from_runtime = os.pipe()
    runtime = os.fork()
    if runtime == 0:
        try:
            os.dup2(to_runtime, 3)  # inheritable, unlike the originals (closed by the exec)
            os.dup2(from_runtime, 4)
            for fd in (3, 4):  # the runtime's own, so that it may reopen them (/proc/self/fd/N)
                os.fchown(fd, spec["uid"], spec["gid"])
            _drop_privileges(spec)
            os.chdir(spec["cwd"])  # where the code will be (a runtime may not be able to move later)
            argv = spec["argv"]
            os.execve(argv[0], argv, spec["env"])
        except BaseException as exc:
            os.write(2, f"shoal launcher: the standby runtime could not start: {exc}\n".encode())
        os._exit(127)
    os.close(to_runtime)
    os.close(from_runtime)
    if os.read(to_us, 1) != b"R":
        raise OSError("the standby runtime ended before it was ready")
    os.write(report, b"S\n")
    if to_us in select.select([report, to_us], [], [])[0]:
        raise OSError("the standby runtime ended while waiting")  # the server finds this stem dead
    spec = {**spec, **_read_spec(report)}
    _specialise_root(spec, standing_in=spec["cwd"])
    message = memoryview(json.dumps({"env": spec["env"], "cwd": spec["cwd"]}).encode())
    while message:
        message = message[os.write(from_us, message) :]
    os.close(from_us)
    os.close(to_us)
    os.setgroups([])
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    os.write(report, b"G\n")  # the runtime is running
    while True:  # the namespace's init: reap orphans until the runtime ends, then report how it ended
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == runtime:
            os.write(report, f"W{status}\n".encode())
            os._exit(0)


def _open_tree(path: str) -> int:
    tree = _libc.syscall(SYS_OPEN_TREE, AT_FDCWD, path.encode(), OPEN_TREE_CLONE | O_CLOEXEC | AT_RECURSIVE)
    if tree < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"open_tree {path}: {os.strerror(err)}")
    return tree  # type: ignore[no-any-return]


def _graft(spec: dict, standing_in: str | None) -> None:  # type: ignore[type-arg]
    """Specialise the sealed root from the host's mount namespace, where the cgroup files and the function's
    directories are: write the limits there and clone the directories (``open_tree``); back here, attach the
    clones (``move_mount``) read-only. A directory a runtime already stands in (``standing_in``, a
    pre-started runtime's ``/var/task``) gets the code's entries one by one: a mount over it would not be
    seen from inside it."""
    own = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    trees: list[tuple[int, str]] = []
    entries: list[tuple[str, str, str]] = []  # (path inside, kind "d"/"f"/"l", link target)
    try:
        _check(_libc.setns(spec["host_ns"], CLONE_NEWNS), "setns(host)")
        try:
            for path, value in spec["cgroup_limits"]:
                _write(path, value)
            for source, inside in spec["binds"]:
                if inside != standing_in:
                    trees.append((_open_tree(source), inside))
                    continue
                for entry in os.scandir(source):
                    target = f"{inside}/{entry.name}"
                    if entry.is_symlink():
                        entries.append((target, "l", os.readlink(entry.path)))
                    elif entry.is_dir() or entry.is_file():
                        entries.append((target, "d" if entry.is_dir() else "f", ""))
                        trees.append((_open_tree(entry.path), target))
        finally:
            _check(_libc.setns(own, CLONE_NEWNS), "setns(own)")  # back, whatever happened there
        if entries:
            _mount(None, "/", None, MS_REMOUNT | MS_NOSUID | MS_NODEV, "size=4m,mode=755")
            for target, kind, link in entries:
                if kind == "d":
                    os.mkdir(target)
                elif kind == "f":
                    os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
                else:
                    os.symlink(link, target)
            _mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4m,mode=755")
        for tree, inside in trees:
            empty = b""
            _check(
                _libc.syscall(
                    SYS_MOVE_MOUNT, tree, empty, AT_FDCWD, inside.encode(), MOVE_MOUNT_F_EMPTY_PATH
                ),
                "move_mount",
            )
            _mount(None, inside, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    finally:
        for tree, _ in trees:
            os.close(tree)
        os.close(spec["host_ns"])
        os.close(own)


def _start_extension(path: str, env: dict) -> None:  # type: ignore[type-arg]
    """An external extension: a child of PID 1 (as the environment's uid, with the runtime's environment
    and output), started before the runtime."""
    if os.fork() == 0:
        try:
            os.execve(path, [path], env)
        except OSError as exc:
            os.write(2, f"shoal: extension {path} could not be started: {exc.strerror}\n".encode())
        os._exit(127)


def _glibc_tid_address() -> int:
    """Where glibc keeps this thread's id (``struct pthread``'s ``tid``, which its ``fork`` has the kernel
    rewrite in the child): 0 when it is not where x86-64 glibc has it, and the child's copy then keeps the
    daemon's id (only glibc's own bookkeeping reads it; ``gettid`` and signals to oneself do not)."""
    if os.uname().machine != "x86_64" or not hasattr(os, "confstr"):
        return 0
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc "):  # type: ignore[union-attr]
            return 0
    except (ValueError, OSError):
        return 0
    _libc.pthread_self.restype = ctypes.c_void_p
    address = _libc.pthread_self() + 0x2D0  # offsetof(struct pthread, tid) in x86-64 glibc 2.2x-2.4x
    return address if ctypes.c_int.from_address(address).value == _libc.syscall(186) else 0  # gettid


def _clone(flags: int, tid_address: int) -> int:
    """``os.fork()`` with ``clone`` flags: new namespaces and ``CLONE_PARENT`` (the child is the server's,
    not the daemon's). The interpreter's own fork steps run around it (``PyOS_BeforeFork`` and the
    ``AfterFork`` hooks, which also run ``os.register_at_fork`` callbacks), as ``os.fork`` runs them."""
    if tid_address:
        flags |= CLONE_CHILD_SETTID
    api = ctypes.pythonapi
    api.PyOS_BeforeFork()
    L = ctypes.c_long
    if SYS_CLONE == 56:  # x86-64: clone(flags, stack, parent_tid, child_tid, tls)
        pid = _held.syscall(L(SYS_CLONE), L(flags | SIGCHLD), L(0), L(0), L(tid_address), L(0))
    else:  # aarch64: clone(flags, stack, parent_tid, tls, child_tid)
        pid = _held.syscall(L(SYS_CLONE), L(flags | SIGCHLD), L(0), L(0), L(0), L(tid_address))
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(err, f"clone: {os.strerror(err)}")
    return pid  # type: ignore[no-any-return]


def launch(spec: dict, host_ns: int, template: int | None) -> None:  # type: ignore[type-arg]
    """PID 1 of the new namespaces, just cloned: the limits, then the environment. Never returns.
    ``template``: for a stem of a kind with a shared root, the descriptor of its namespace
    (:func:`_template_namespace`); the stem is still in the daemon's mount namespace."""
    try:
        if template is not None:
            if not spec.get("stem") or spec.get("standby"):  # (no host directory to build a root from)
                raise OSError("a kind's shared root is for stem cells only")
            spec["template"] = template
        if spec.get("standby") or spec.get("stem"):  # kept by PID 1 to graft the function's directories in
            spec["host_ns"] = host_ns
        else:
            os.close(host_ns)
        for path, value in spec.get("cgroup_limits", ()):
            _write(path, value)
        _child(spec)
    except BaseException as exc:  # report and leave: the server sees exit status 125
        os.write(2, f"shoal launcher: sandbox set-up failed: {exc}\n".encode())
    os._exit(125)


_PRELOADED: dict = {}  # type: ignore[type-arg]  # zygote mode: the runtime's bootstrap module, imported once


def _preload(path: str) -> None:
    """Zygote mode: import the language bootstrap (not the function's code) before serving."""
    import gc
    import importlib.util

    spec = importlib.util.spec_from_file_location("bootstrap", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bootstrap"] = module
    spec.loader.exec_module(module)
    warm_up = getattr(module, "preload", None)
    if callable(warm_up):  # what every environment would otherwise do for the first time after the fork
        warm_up()
    _PRELOADED["module"] = module
    _PRELOADED["path"] = path
    _PRELOADED["sys_path"] = [p for p in sys.path if p != os.path.dirname(os.path.abspath(__file__))]
    _rehearse_environ()
    gc.collect()
    _immortalize()
    gc.freeze()  # children do not copy the heap on their first collection
    _PRELOADED["written"] = _learn_writes(getattr(module, "rehearse", None))


MADV_POPULATE_WRITE = 23  # Linux 5.14
EINVAL = 22


def _learn_writes(rehearse: Callable[[], None] | None) -> list[tuple[int, int]]:
    """The pages of this fork-server's memory that a child writes as it becomes an environment and serves its
    first invocation, as (start, length) ranges: a throw-away child rehearses that (the bootstrap's
    ``rehearse``) and reports the pages it made its own (``/proc/self/pagemap``: present and mapped by it
    alone). A stem copies them ahead of its start (:func:`_copy_written`). Empty when there is no rehearsal,
    it fails, or the kernel does not say."""
    if rehearse is None:
        return []
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(reader)
            regions = _private_writable_regions()
            _rehearse_environ(1)
            rehearse()
            _write_all(writer, marshal.dumps(_exclusive_ranges(regions)))
            code = 0
        except BaseException as exc:  # only an optimisation: stems then copy nothing ahead
            os.write(2, f"shoal launcher: learning what children write failed: {exc!r}\n".encode())
        finally:
            os._exit(code)
    os.close(writer)
    chunks = []
    while True:
        chunk = os.read(reader, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(reader)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        return []
    return marshal.loads(b"".join(chunks))  # type: ignore[no-any-return]


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _private_writable_regions() -> list[tuple[int, int]]:
    """This process's private writable mappings (what a child copies on write), as (start, end)."""
    regions = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if fields[1] == "rw-p":
                start, end = (int(x, 16) for x in fields[0].split("-"))
                regions.append((start, end))
    return regions


def _exclusive_ranges(regions: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Of ``regions``, the pages present and mapped by this process alone, coalesced into ranges."""
    import array

    page = os.sysconf("SC_PAGE_SIZE")
    ranges: list[tuple[int, int]] = []
    with open("/proc/self/pagemap", "rb", buffering=0) as pagemap:
        for start, end in regions:
            pagemap.seek(start // page * 8)
            entries = array.array("Q")
            entries.frombytes(pagemap.read((end - start) // page * 8))
            for i, entry in enumerate(entries):
                if entry >> 63 and entry >> 56 & 1:
                    address = start + i * page
                    if ranges and ranges[-1][0] + ranges[-1][1] == address:
                        ranges[-1] = (ranges[-1][0], ranges[-1][1] + page)
                    else:
                        ranges.append((address, page))
    return ranges


def _copy_written() -> None:
    """A stem of a fork-server, in its cgroups already (they are charged for the copies): copy now, while it
    waits for its function, the daemon's pages that its start would otherwise copy on write one fault at a
    time (:func:`_learn_writes`): ~185 faults (~0.4 ms of Init Duration) less on a cold start's path. The
    pages' contents do not change. A range the daemon has unmapped since is skipped; before Linux 5.14
    nothing is copied ahead."""
    for start, length in _PRELOADED.get("written", ()):
        if _libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(length), MADV_POPULATE_WRITE) != 0:
            if ctypes.get_errno() == EINVAL:  # (the kernel has no such advice)
                return


def _rehearse_environ(rounds: int = 4) -> None:
    """Swap ``os.environ`` as every child does (:func:`_run_preloaded`) a few times, then restore it: the
    code's specialised bytecode is then written once here, not copy-on-write faulted in each child."""
    saved = dict(os.environ)
    sample = {f"SHOAL_REHEARSAL_{i}": "rehearsal" for i in range(32)}
    for _ in range(rounds):
        os.environ.clear()
        os.environ.update(sample)
    os.environ.clear()
    os.environ.update(saved)


def _immortalize() -> None:
    """Make every object of the fork-server immortal (PEP 683, CPython 3.12 and 3.13): the interpreter then
    never writes their reference counts, so a child reading an object no longer copies the page it is on
    (~70 fewer copy-on-write faults and ~0.2 MB less private memory per environment here). The objects are
    the fork-server's own and live as long as it does anyway. Other interpreters and builds (free-threaded,
    debug: another object header) are left as they are."""
    import gc

    if (
        sys.implementation.name != "cpython"
        or sys.version_info[:2] not in ((3, 12), (3, 13))
        or sys.maxsize < 1 << 32
        or getattr(sys, "abiflags", "x") != ""
    ):
        return
    immortal = 0xFFFFFFFF  # _Py_IMMORTAL_REFCNT on 64-bit builds: the low 32 bits negative as an int32
    # an object already immortal is not visited again: the mark is the visited set, which would otherwise
    # take ~3 MB (an int per object) that stays in the fork-server's heap, and is copied with its page
    # tables into every environment
    todo = gc.get_objects()
    while todo:
        obj = todo.pop()
        count = ctypes.c_ssize_t.from_address(id(obj))
        if count.value & 0x80000000:
            continue
        count.value = immortal
        todo.extend(gc.get_referents(obj))


def _run_preloaded(spec: dict, report: int) -> None:  # type: ignore[type-arg]
    """PID 1 in zygote mode: become the runtime without an exec (the interpreter is already warm)."""
    module = _PRELOADED["module"]
    os.environ.clear()
    os.environ.update(spec["env"])
    sys.argv[:] = [_PRELOADED["path"]]
    sys.path[:] = _PRELOADED["sys_path"]
    sys.modules["__main__"] = module
    os.close(report)  # the server reads EOF: the runtime is running
    code = 0
    try:
        module.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _read_spec(report: int) -> dict:  # type: ignore[type-arg]
    """The spec comes over the request's own socket, read by the child: the daemon's memory never holds
    one function's settings for another's environment to inherit."""
    head = b""
    while len(head) < 4:
        chunk = os.read(report, 4 - len(head))
        if not chunk:
            raise OSError("the server closed the request before sending its spec")
        head += chunk
    size = int.from_bytes(head, "big")
    chunks = []
    while size:
        chunk = os.read(report, min(size, 1 << 16))
        if not chunk:
            raise OSError("the request's spec was cut short")
        chunks.append(chunk)
        size -= len(chunk)
    spec = marshal.loads(b"".join(chunks))
    spec["report_fd"] = report
    return spec  # type: ignore[no-any-return]


def _private_workspace(workspace: str) -> bool:
    """Move the daemon into a mount namespace of its own, private, with a tmpfs at ``workspace`` (an empty
    directory of the server's) for the shared roots it makes: they live and die with the daemon and the
    stems that copy them, and the host never sees a mount of them. False (templates off) where that fails."""
    try:
        _check(_libc.unshare(CLONE_NEWNS), "unshare")
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        _mount("tmpfs", workspace, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=1m,mode=700")
    except OSError as exc:
        os.write(2, f"shoal launcher: stems build their own roots: {exc}\n".encode())
        return False
    return True


def _favor_dynmods(workspace: str) -> None:
    """Ask the kernel to favour cgroup migrations (every stem joins its cgroups) over forks and exits:
    mount, in this daemon's own mount namespace, a cgroup v1 hierarchy of no controller with the
    ``favordynmods`` option. While any hierarchy has it, the lock every migration takes for writing is
    kept in its writers' mode, so a join no longer waits out an RCU grace period after the host was idle
    (10-25 ms here); from Linux 6.18 migrations of whole processes take a per-process lock instead, which
    stays so until reboot. The mount lives as long as this namespace; the kinds' namespaces (which stems
    copy) drop theirs when they pivot into their shared roots. Best effort: without it (Linux < 6.0, no
    cgroup v1) only the first join after idle is slow."""
    where = f"{workspace}/cgroup-dynmods"
    try:
        os.mkdir(where, 0o700)
        _mount("cgroup", where, "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC, "none,name=shoal,favordynmods")
    except OSError as exc:
        os.write(2, f"shoal launcher: cgroup favordynmods is off: {exc}\n".encode())


def serve(
    control: int, preload: str | None = None, workspace: str | None = None, favor_dynmods: bool = False
) -> int:
    """The daemon: one request per message on ``control`` (``R``, or ``H`` when environments share the
    host's network, then, for a stem, its kind's shared binds and mount points as ``marshal`` bytes; and two
    descriptors: the environment's output pipe and the request's socket); ends when the server closes
    ``control`` (or dies)."""
    import socket

    _libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
    if preload:
        _preload(preload)
    host_ns = os.open("/proc/self/ns/mnt", os.O_RDONLY)  # for stems: where their functions' code is
    # by stem kind: a mount namespace rooted at its shared root (None if making it failed)
    templates: dict[bytes, int | None] | None = None
    if workspace and _private_workspace(workspace):
        templates = {}
        if favor_dynmods:
            _favor_dynmods(workspace)
    tid_address = _glibc_tid_address()
    channel = socket.socket(fileno=control)
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(channel, MAX_CONTROL, 2)
        except InterruptedError:
            continue
        if not data:
            return 0
        out_fd, report_fd = fds
        flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PARENT
        if not data.startswith(b"H"):
            flags |= CLONE_NEWNET
        template = None
        kind = data[1:]
        if kind and templates is not None:
            if kind not in templates:
                where = f"{workspace}/{len(templates)}"
                try:
                    base_binds, mountpoints = marshal.loads(kind)
                    templates[kind] = _template_namespace(where, base_binds, mountpoints)
                except (OSError, ValueError, TypeError, EOFError) as exc:
                    os.write(2, f"shoal launcher: stems of a kind build their own roots: {exc}\n".encode())
                    templates[kind] = None
            template = templates[kind]
        if template is not None:  # the stem copies its kind's namespace instead (:func:`_child`)
            flags &= ~CLONE_NEWNS
        try:
            pid = _clone(flags, tid_address)
        except OSError as exc:  # the server reads EOF without a pid, and this on the environment's output
            os.write(out_fd, f"shoal launcher: sandbox set-up failed: {exc}\n".encode())
            pid = -1
        if pid == 0:
            channel.close()
            for namespace in (templates or {}).values():  # the daemon's, never an environment's
                if namespace is not None and namespace != template:
                    os.close(namespace)
            os.dup2(out_fd, 1)
            os.dup2(out_fd, 2)
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
            os.close(out_fd)
            try:
                spec = _read_spec(report_fd)
            except BaseException as exc:
                os.write(2, f"shoal launcher: bad request: {exc}\n".encode())
                os._exit(125)
            launch(spec, host_ns, template)
        if pid > 0:
            try:
                os.write(report_fd, f"P{pid}\n".encode())
            except OSError:
                pass  # the server gave the request up; it reaps PID 1 (its child) all the same
        os.close(out_fd)
        os.close(report_fd)


def _in_child(check: Callable[[], None], failure: int) -> int:
    """Run ``check`` in a throw-away child: 0 if it returned, ``failure`` (its reason on stderr) if not."""
    pid = os.fork()
    if pid == 0:
        try:
            check()
            os._exit(0)
        except BaseException as exc:
            os.write(2, f"{exc}\n".encode())
            os._exit(failure)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def probe() -> int:
    """Check, in a throw-away child, that namespaces, mounts and pivot_root work here."""

    def check() -> None:
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        probe_spec = {"root": sys.argv[2], "binds": [], "tmp_mb": 1, "uid": 65534, "gid": 65534}
        _build_base(probe_spec)
        _finish_root(probe_spec)

    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    return _in_child(check, 125)


CLONE_NEWUSER = 0x10000000


def probe_userns() -> int:
    """Whether an unprivileged process may make a user namespace (what a copy forked from a SnapStart
    snapshot does to become an environment of its own): 0 if so."""

    def check() -> None:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare")

    return _in_child(check, 1)


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--probe":
        return probe()
    if len(sys.argv) == 2 and sys.argv[1] == "--probe-userns":
        return probe_userns()
    if len(sys.argv) >= 3 and len(sys.argv) % 2 == 1 and sys.argv[1] == "--serve":
        options = {sys.argv[i]: sys.argv[i + 1] for i in range(3, len(sys.argv), 2)}
        if set(options) <= {"--preload", "--workspace", "--favor-dynmods"}:
            return serve(
                int(sys.argv[2]),
                options.get("--preload"),
                options.get("--workspace"),
                options.get("--favor-dynmods") == "1",
            )
    sys.stderr.write(
        "usage: launcher.py --serve FD [--preload BOOTSTRAP] [--workspace DIR] [--favor-dynmods 1]"
        " | --probe ROOT | --probe-userns\n"
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())

"""What a Python fork-server prepares ahead for its children (the launcher's ``_preload``, the bootstrap's
``preload()``) and what it must not leave them: each test forks real environments, on this interpreter and
on a CPython 3.12/3.13 when the host has one (the versions whose objects the fork-server makes immortal)."""

from __future__ import annotations

import glob
import json
import os

import pytest

from shoal.runtimes.builtin import registry
from shoal.runtimes.registry import Runtime
from tests.integration.conftest import needs_namespace
from tests.integration.test_sandbox_security import RUNTIME, Harness, first_invoke, invocation, run

pytestmark = needs_namespace

IMMORTAL = 0xFFFFFFFF  # what sys.getrefcount reports for an immortal object on a 64-bit CPython 3.12/3.13


def _immortalizing_runtime() -> Runtime | None:
    runtimes = registry()
    runtimes.discover({})
    for runtime_id in ("python3.12", "python3.13"):
        runtime = runtimes.get(runtime_id)
        if runtime is not None:
            return runtime
    return None


@pytest.fixture
def harness(tmp_path, namespace_backend):
    return Harness(tmp_path, namespace_backend)


@pytest.fixture(params=["this-interpreter", "immortalizing"])
def runtime(request) -> Runtime:
    if request.param == "this-interpreter":
        return RUNTIME
    found = _immortalizing_runtime()
    if found is None:
        pytest.skip("no CPython 3.12 or 3.13 on this host for Shoal to offer")
    return found


INSPECT = """
import os, sys

MODULE_REFS = sys.getrefcount(sys.modules["bootstrap"].handle_event_request)

def handler(event, context):
    fresh = object()
    fds = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds[fd] = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            pass
    return {
        "version": list(sys.version_info[:2]),
        "bootstrap_refs": MODULE_REFS,
        "fresh_refs": sys.getrefcount(fresh),
        "rehearsal_modules": [m for m in sys.modules if "rehearsal" in m],
        "rehearsal_paths": [p for p in list(sys.path) + list(sys.path_importer_cache) if "rehearsal" in p],
        "rehearsal_vars": [k for k in os.environ if "REHEARSAL" in k],
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "path0": sys.path[0],
        "fds": fds,
        "tmp": os.listdir("/tmp"),
    }
"""


TRACE = "Root=1-00000000-000000000000000000000001;Parent=0000000000000001;Sampled=0"


def _inspect(harness: Harness, runtime: Runtime) -> dict:  # type: ignore[type-arg]
    env = harness.environment(INSPECT, runtime=runtime)
    before = set(glob.glob("/tmp/shoal-rehearsal-*"))
    inv = invocation({})
    inv.trace_id = TRACE
    out = first_invoke(harness, env, inv)
    assert not out.function_error, out.payload
    got = json.loads(out.payload)
    got["host_rehearsal_dirs"] = sorted(set(glob.glob("/tmp/shoal-rehearsal-*")) - before)
    return got


def test_the_fork_servers_rehearsal_leaves_nothing_in_an_environment(harness, runtime):
    """The fork-server runs a module import and an invocation against a socket pair before it forks; none
    of it (module, path entry, variables, trace id, directory) is left for a function to see."""
    got = _inspect(harness, runtime)
    assert got["rehearsal_modules"] == [] and got["rehearsal_paths"] == [] and got["rehearsal_vars"] == []
    assert got["trace"] == TRACE
    assert got["path0"] == "/var/task"
    assert got["tmp"] == [] and got["host_rehearsal_dirs"] == []


def test_an_environment_holds_no_namespace_descriptor(harness, runtime):
    """A stem's init keeps the host's mount namespace open to graft the function's directories in; the
    environment it becomes has no such descriptor (with one, root code could re-enter the host's mounts)."""
    got = _inspect(harness, runtime)
    namespaces = {fd: target for fd, target in got["fds"].items() if ":[" in target and "ns" in target}
    assert not [t for t in got["fds"].values() if t.startswith("mnt:")], got["fds"]
    assert not namespaces, namespaces


def test_the_fork_servers_objects_are_immortal_where_the_interpreter_allows(harness, runtime):
    """On CPython 3.12/3.13 the fork-server's objects are immortal (their reference counts are never written,
    so reading them does not copy their pages into each child); objects a function makes are ordinary."""
    got = _inspect(harness, runtime)
    assert got["fresh_refs"] < 10
    if tuple(got["version"]) in ((3, 12), (3, 13)):
        assert got["bootstrap_refs"] == IMMORTAL
    else:
        assert got["bootstrap_refs"] < 1000


THREADS = """
import ctypes, os, threading

def handler(event, context):
    libc = ctypes.CDLL(None)
    libc.pthread_self.restype = ctypes.c_void_p
    started = []
    worker = threading.Thread(target=lambda: started.append(threading.get_native_id()))
    worker.start()
    worker.join()
    return {
        "pid": os.getpid(),
        "native_id": threading.get_native_id(),
        "glibc_tid": ctypes.c_int.from_address(libc.pthread_self() + 0x2D0).value,
        "worker": started,
    }
"""


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def test_pid_1_is_the_servers_child_and_a_true_fork(harness, runtime):
    """The launcher daemon clones PID 1 of the new namespaces straight as the server's child (``clone`` with
    ``CLONE_PARENT``, not ``os.fork``): the daemon keeps no child, and PID 1 is what ``os.fork`` would have
    made — the interpreter's fork hooks run (threads work), glibc's thread id its own (1), not the
    daemon's."""
    from shoal.sandbox import launcher

    env = harness.environment(THREADS, runtime=runtime)

    async def scenario():
        await env.start()
        out = await env.invoke(invocation())
        daemons = [process.pid for process, _ in harness.backend._daemons.values()]
        return out, _ppid(env.process.pid), {pid: _children(pid) for pid in daemons}

    out, parent, daemon_children = run(harness, scenario)
    assert not out.function_error, out.payload
    got = json.loads(out.payload)
    assert parent == os.getpid()  # the test process is the server here
    assert daemon_children and all(children == [] for children in daemon_children.values()), daemon_children
    assert got["pid"] == got["native_id"] == 1
    assert len(got["worker"]) == 1 and got["worker"][0] != 1
    if launcher._glibc_tid_address():
        assert got["glibc_tid"] == 1


LEARN = r"""
import ctypes, json, os, sys

sys.path.insert(0, sys.argv[1])
import launcher

page = os.sysconf("SC_PAGE_SIZE")
buffer = bytearray(page * 64)
base = ctypes.addressof((ctypes.c_char * len(buffer)).from_buffer(buffer))
first = (base + page - 1) // page * page  # 60 whole pages of the buffer from here
for k in range(60):
    buffer[first - base + k * page] = 1  # present in this process before any fork


def rehearse():
    for k in (3, 4, 5):
        buffer[first - base + k * page] = 2


def exclusive(address):
    with open("/proc/self/pagemap", "rb", buffering=0) as pagemap:
        pagemap.seek(address // page * 8)
        entry = int.from_bytes(pagemap.read(8), "little")
    return bool(entry >> 63 and entry >> 56 & 1)


ranges = launcher._learn_writes(rehearse)
pages = [a for s, n in ranges for a in range(s, s + n, page)]
learned = sorted((a - first) // page for a in pages if first <= a < first + 60 * page)
launcher._PRELOADED["written"] = ranges
reader, writer = os.pipe()
if os.fork() == 0:  # a stem: the learned pages are its own before it writes any of them
    before = [k for k in range(60) if exclusive(first + k * page)]
    launcher._copy_written()
    after = [k for k in range(60) if exclusive(first + k * page)]
    os.write(writer, json.dumps([before, after]).encode())
    os._exit(0)
os.close(writer)
before, after = json.loads(os.read(reader, 1 << 16))
os.wait()
kept = buffer[first - base + 3 * page]
print(json.dumps({"learned": learned, "before": before, "after": after, "buffer": kept}))
"""


def test_a_fork_server_learns_the_pages_its_children_write_and_stems_copy_them_ahead(tmp_path):
    """A throw-away child of the fork-server rehearses a start and reports the pages it made its own; a stem
    copies those (``MADV_POPULATE_WRITE``) while it waits, so its start does not fault on each of them. Only
    the pages the rehearsal wrote are learned, and copying them changes no byte."""
    import subprocess
    import sys

    from shoal.sandbox import launcher

    script = tmp_path / "learn.py"
    script.write_text(LEARN)
    done = subprocess.run(
        [sys.executable, "-I", str(script), os.path.dirname(launcher.__file__)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["learned"] == [3, 4, 5]  # of the buffer's 60 pages: the rehearsal's, not the others
    assert got["before"] == []  # a fresh fork shares every page with its parent
    assert got["after"] == [3, 4, 5]  # copied ahead, and nothing else of the buffer
    assert got["buffer"] == 1  # the rehearsal's writes stayed in its own process

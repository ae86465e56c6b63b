"""SnapStart snapshots on the namespace sandbox, with a real Python runtime: each new environment of a version
is a copy forked from its snapshot, moved into its own sandbox.

What must hold: INIT and the before-snapshot hooks run once, in the snapshot; each copy runs the
after-restore hooks, has its own uid, ``/tmp``, randomness, cgroup (memory limit) and Runtime API, and cannot
signal or reach its siblings or the snapshot; hook failures surface as AWS reports them; nothing outlives the
registry.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.core.errors import SnapStartException
from shoal.core.tasks import Supervisor
from shoal.core.types import FunctionConfig
from shoal.environments.environment import Environment, Invocation, Outcome, Settings
from shoal.environments.snapshots import Snapshots
from shoal.runtimes.python import PythonFamily
from shoal.sandbox import namespace
from shoal.sandbox.namespace import NamespaceBackend
from tests.function_configs import function_config

NS_OK, NS_WHY = namespace.available()
pytestmark = [
    pytest.mark.skipif(not NS_OK, reason=f"namespace sandbox unavailable on this host: {NS_WHY}"),
    pytest.mark.skipif(
        NS_OK and not namespace.forks_isolatable(),
        reason="unprivileged processes may not make user namespaces here (SnapStart copies need them)",
    ),
]
RUNTIMES = PythonFamily().discover({})
RUNTIME = next((RUNTIMES[r] for r in ("python3.12", "python3.13", "python3.11") if r in RUNTIMES), None)

PROBE = """
import os, random, signal, socket, time
from snapshot_restore_py import register_before_snapshot, register_after_restore

INIT_PID = os.getpid()
HOOKS = []
register_before_snapshot(HOOKS.append, "before")
register_after_restore(HOOKS.append, "after")


def attempt(f):
    try:
        return f()
    except OSError as exc:
        return type(exc).__name__


def handler(event, context):
    if event.get("write"):
        open("/tmp/" + event["write"], "w").write("x")
        open("/dev/shm/" + event["write"], "w").write("x")
    if event.get("allocate_mb"):
        hog = bytearray(event["allocate_mb"] << 20)
        for i in range(0, len(hog), 4096):
            hog[i] = 1
    out = {
        "pid": os.getpid(), "init_pid": INIT_PID, "uid": os.getuid(), "gid": os.getgid(), "hooks": HOOKS,
        "random": random.random(), "tmp": sorted(os.listdir("/tmp")), "shm": sorted(os.listdir("/dev/shm")),
        "api": os.environ["AWS_LAMBDA_RUNTIME_API"], "type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"],
        "groups": os.getgroups(),
    }
    if event.get("kill"):
        out["kill"] = attempt(lambda: os.kill(event["kill"], signal.SIGKILL))
    if event.get("connect"):
        host, port = event["connect"].split(":")
        def talk():
            with socket.create_connection((host, int(port)), timeout=2) as s:
                s.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
                s.settimeout(1)
                try:
                    return s.recv(100).decode(errors="replace") or "closed"
                except socket.timeout:
                    return "waiting"
        out["connect"] = attempt(talk)
    return out
"""


def config(**kw: Any) -> FunctionConfig:
    assert RUNTIME is not None
    return function_config(
        **{
            "name": "snap",
            "runtime": RUNTIME.id,
            "code_sha256": "x",
            "timeout": 5,
            "version": "1",
            "snap_start_apply_on": "PublishedVersions",
            **kw,
        }
    )


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.backend = NamespaceBackend(stem_cells=1)
        self.supervisor = Supervisor()
        self.lines: list[str] = []
        self.made: list[Environment] = []
        self.code = tmp_path / "code"
        self.work = tmp_path / "envs"
        self.snapshots = Snapshots(lambda fn: self._make(fn, "snap-start"), self.supervisor)

    def _make(self, fn: FunctionConfig, itype: str) -> Environment:
        assert RUNTIME is not None
        env = Environment(
            fn,
            RUNTIME,
            self.backend,
            self.code,
            self.work,
            lambda account, group, stream, ts, message: self.lines.append(message),
            Settings(region="us-east-1", init_timeout=10, endpoint="http://127.0.0.1:1"),
            itype,
        )
        self.made.append(env)
        return env

    def code_is(self, source: str) -> None:
        self.code.mkdir(exist_ok=True)
        (self.code / "app.py").write_text(source)

    def environment(self, **kw: Any) -> Environment:
        env = self._make(config(**kw), "on-demand")
        env.snapshots = self.snapshots
        return env

    async def close(self) -> None:
        for env in self.made:
            await env.shutdown()
        await self.snapshots.close()
        await self.supervisor.close()
        self.backend.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    if RUNTIME is None:
        pytest.skip("no python3.11+ runtime on this host")
    made = Harness(tmp_path)
    yield made
    for env in made.made:  # whatever a failed test left running
        if env.process is not None and env.process.returncode is None:
            env.process.kill()
    made.backend.close()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 90))


async def invoke(env: Environment, payload: dict[str, Any] | None = None, rid: str = "r") -> Outcome:
    body = json.dumps(payload or {}).encode()
    return await env.invoke(Invocation(request_id=rid, payload=body, invoked_arn="arn:aws:lambda:x"))


def body(out: Outcome) -> Any:
    return json.loads(out.payload)


def test_copies_skip_init_and_are_each_their_own(harness: Harness) -> None:
    harness.code_is(PROBE)

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any], float | None, list[int]]:
        copies = [harness.environment() for _ in range(3)]
        for copy in copies:
            await copy.start()
        got = [body(await invoke(c, {"write": f"f{i}"})) for i, c in enumerate(copies)]
        again = body(await invoke(copies[0]))
        restore_ms = copies[0].restore_ms
        pids = [env.process.pid for env in harness.made if env.process is not None]  # host pids
        await harness.close()
        return got, again, restore_ms, pids

    got, again, restore_ms, pids = run(scenario())
    assert len({g["init_pid"] for g in got}) == 1 and all(g["pid"] != g["init_pid"] for g in got)
    assert all(g["hooks"] == ["before", "after"] for g in got)  # before once (in the snapshot), after in each
    assert len({g["uid"] for g in got}) == 3 and all(g["uid"] == g["gid"] >= 100000 for g in got)
    assert all(g["groups"] == [] for g in got)
    assert [g["tmp"] for g in got] == [["f0"], ["f1"], ["f2"]]  # each its own /tmp
    assert [g["shm"] for g in got] == [["f0"], ["f1"], ["f2"]]  # and /dev/shm
    assert len({g["random"] for g in got}) == 3
    assert len({g["api"] for g in got}) == 3
    assert all(g["type"] == "snap-start" for g in got)
    assert again["pid"] == got[0]["pid"] and again["tmp"] == ["f0"]  # a warm copy keeps its state
    assert restore_ms is not None and restore_ms > 0
    assert sum(line.startswith("INIT_START") for line in harness.lines) == 1  # the snapshot's
    assert sum(line.startswith("RESTORE_START") for line in harness.lines) == 3
    reports = [line for line in harness.lines if line.startswith("REPORT")]
    assert sum("\tRestore Duration: " in line for line in reports) == 3  # the first invoke of each copy
    assert len(pids) == 4  # the snapshot and its three copies
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(pid) for pid in pids):
        time.sleep(0.05)
    assert not [pid for pid in pids if _running(pid)]  # closing the registry ended them all


def test_a_copy_cannot_reach_its_siblings_or_the_snapshot(harness: Harness) -> None:
    harness.code_is(PROBE)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], int]:
        a, b = harness.environment(), harness.environment()
        await a.start()
        await b.start()
        first_b = body(await invoke(b))
        probe = body(await invoke(a, {"kill": first_b["pid"], "connect": first_b["api"]}))
        at_snapshot = body(await invoke(a, {"kill": first_b["init_pid"]}))
        still_b = body(await invoke(b, {}, rid="r2"))
        assert b.endpoint is not None
        refused = b.endpoint.refused
        await harness.close()
        return probe, at_snapshot, still_b, refused

    probe, at_snapshot, still_b, refused = run(scenario())
    assert probe["kill"] == "PermissionError"  # another uid: no signal
    assert at_snapshot["kill"] == "PermissionError"
    assert probe["connect"] in ("closed", "ConnectionResetError")  # refused: the sibling's uid is not its own
    assert refused >= 1
    assert still_b["pid"] != probe["pid"]  # the sibling lives on


def test_a_copy_has_its_own_memory_limit(harness: Harness) -> None:
    harness.code_is(PROBE)

    async def scenario() -> tuple[Outcome, Outcome]:
        small = harness.environment(memory_size=128)
        await small.start()
        other = harness.environment(memory_size=128)
        await other.start()
        out = await invoke(small, {"allocate_mb": 400})
        fine = await invoke(other, {"allocate_mb": 16})
        await harness.close()
        return out, fine

    out, fine = run(scenario())
    assert out.function_error and out.error_type == "Runtime.OutOfMemory", out.payload
    assert not fine.function_error


def test_after_restore_hook_failure_is_a_snapstart_exception(harness: Harness) -> None:
    harness.code_is(
        "from snapshot_restore_py import register_after_restore\n"
        "@register_after_restore\n"
        "def broken():\n"
        "    raise ValueError('no database after restore')\n"
        "def handler(event, context):\n"
        "    return 'never'\n"
    )

    async def scenario() -> BaseException | None:
        env = harness.environment()
        try:
            await env.start()
        except SnapStartException as exc:
            return exc
        finally:
            await harness.close()
        return None

    error = run(scenario())
    assert isinstance(error, SnapStartException) and error.status == 400
    assert "afterRestore()" in error.message
    assert any("no database after restore" in line for line in harness.lines)


def test_before_snapshot_hook_failure_is_the_init_error_of_every_environment(harness: Harness) -> None:
    harness.code_is(
        "from snapshot_restore_py import register_before_snapshot\n"
        "@register_before_snapshot\n"
        "def broken():\n"
        "    raise RuntimeError('cannot snapshot')\n"
        "def handler(event, context):\n"
        "    return 'never'\n"
    )

    async def scenario() -> list[Outcome]:
        outs = []
        for _ in range(2):
            env = harness.environment()
            await env.start()
            outs.append(await invoke(env))
        await harness.close()
        return outs

    outs = run(scenario())
    for out in outs:
        assert out.function_error
        assert body(out)["errorType"] == "RuntimeError" and body(out)["errorMessage"] == "cannot snapshot"
    assert sum(line.startswith("INIT_START") for line in harness.lines) == 1  # INIT ran once


def test_a_changed_version_gets_a_new_snapshot_and_nothing_outlives_the_registry(harness: Harness) -> None:
    harness.code_is(PROBE)

    async def scenario() -> tuple[int, int, list[int]]:
        first = harness.environment()
        await first.start()
        one = body(await invoke(first))
        harness.snapshots.on_config_change(config(revision_id="r2"), deleted=False)
        second = harness.environment(revision_id="r2")
        await second.start()
        two = body(await invoke(second))
        pids = [p for env in harness.made if env.process is not None for p in [env.process.pid]]
        await harness.close()
        return one["init_pid"], two["init_pid"], pids

    _, _, pids = run(scenario())
    assert sum(line.startswith("INIT_START") for line in harness.lines) == 2  # a new snapshot for r2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(pid) for pid in pids):
        time.sleep(0.05)
    assert not [pid for pid in pids if _running(pid)]


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_spare_copies_made_ahead_become_the_next_environments(harness: Harness) -> None:
    harness.code_is(PROBE)

    async def scenario() -> tuple[list[int], list[int], list[dict[str, Any]], list[int]]:
        first = harness.environment()
        await first.start()  # forks for itself, then spares are made in the background
        deadline = time.monotonic() + 20
        while (
            time.monotonic() < deadline
            and len(harness.snapshots._spares.get(("123456789012", "snap", "1"), [])) < 2
        ):
            await asyncio.sleep(0.02)
        spares = [c.process.pid for c in harness.snapshots._spares[("123456789012", "snap", "1")]]
        later = [harness.environment() for _ in range(2)]
        for env in later:
            await env.start()
        got = [body(await invoke(env, {"write": "mine"})) for env in later]
        used = [env.process.pid for env in later if env.process is not None]
        deadline = time.monotonic() + 20  # and new spares replace them
        while (
            time.monotonic() < deadline
            and len(harness.snapshots._spares.get(("123456789012", "snap", "1"), [])) < 2
        ):
            await asyncio.sleep(0.02)
        waiting = [c.process.pid for c in harness.snapshots._spares[("123456789012", "snap", "1")]]
        await harness.close()
        return spares, used, got, waiting

    spares, used, got, waiting = run(scenario())
    assert sorted(used) == sorted(spares)  # the spares became the environments
    assert len({g["uid"] for g in got}) == 2 and all(g["tmp"] == ["mine"] for g in got)
    assert len({g["api"] for g in got}) == 2 and all(g["type"] == "snap-start" for g in got)
    assert len(waiting) == 2 and not set(waiting) & set(used)
    deadline = time.monotonic() + 10  # closing the registry let the unused spares go
    while time.monotonic() < deadline and any(_running(pid) for pid in waiting):
        time.sleep(0.05)
    assert not [pid for pid in waiting if _running(pid)]


KEYRINGS = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SESSION = ctypes.c_int(-3)
libc.syscall(250, 1, b"init-session")  # INIT joins a named session keyring (KEYCTL_JOIN_SESSION_KEYRING)...
libc.syscall(248, b"user", b"from-init", b"secret", 6, SESSION)  # ...and keeps a key in it


def find(name):
    key = libc.syscall(250, 10, SESSION, b"user", name.encode(), 0)  # KEYCTL_SEARCH
    return key > 0


def handler(event, context):
    if event.get("add"):
        libc.syscall(248, b"user", event["add"].encode(), b"x", 1, SESSION)
    return {"init_key": find("from-init"), "sibling_key": find("from-a"), "uid": os.getuid()}
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the test calls keyctl by its x86_64 number")
def test_copies_do_not_share_a_session_keyring(harness: Harness) -> None:
    harness.code_is(KEYRINGS)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        a, b = harness.environment(), harness.environment()
        await a.start()
        await b.start()
        got_a = body(await invoke(a, {"add": "from-a"}))
        got_b = body(await invoke(b))
        await harness.close()
        return got_a, got_b

    got_a, got_b = run(scenario())
    assert got_a["init_key"] is False and got_b["init_key"] is False  # not the snapshot's keyring
    assert got_b["sibling_key"] is False  # nor each other's
    assert got_a["sibling_key"] is True  # a copy's own keyring works

"""Function code is hostile: each test is an attempt to break out of the namespace sandbox, which must fail
while the server and other environments keep working. Runs as root on Linux (skipped elsewhere, saying why)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest

from shoal.environments.environment import Environment, Invocation, Settings
from shoal.logs.store import FileLogStore
from shoal.runtimes.python import PythonFamily
from shoal.runtimes.registry import Runtime
from shoal.sandbox.namespace import NamespaceBackend
from tests.function_configs import function_config
from tests.integration.conftest import needs_namespace

pytestmark = needs_namespace

RUNTIME = PythonFamily.runtime(
    f"python{sys.version_info[0]}.{sys.version_info[1]}", os.path.realpath(sys.executable), sys.version.split()[0]
)
SECRET = "shoal-secret-marker-7f3a"


def config(name="f", **kw):
    return function_config(**{"name": name, "runtime": RUNTIME.id, "timeout": 10, **kw})


class Harness:
    def __init__(self, tmp_path: Path, backend: NamespaceBackend) -> None:
        self.tmp = tmp_path
        self.backend = backend
        self.logs = FileLogStore(tmp_path / "logs")
        self.envs: list[Environment] = []
        # Shoal's own data, which no function may read
        (tmp_path / "shoal.db").write_text(SECRET)

    def environment(self, source: str, name: str = "f", runtime: Runtime = RUNTIME, **kw) -> Environment:
        code = self.tmp / f"code-{name}-{len(self.envs)}"
        code.mkdir()
        (code / "app.py").write_text(source)
        (code / "secret.txt").write_text(SECRET)
        env = Environment(config(name, runtime=runtime.id, **kw), runtime, self.backend, code,
                          self.tmp / "envs", self.logs.emit,
                          Settings(region="us-east-1", init_timeout=10, endpoint="http://127.0.0.1:1"))
        self.envs.append(env)
        return env

    async def close(self) -> None:
        await asyncio.gather(*(e.shutdown() for e in self.envs), return_exceptions=True)


@pytest.fixture
def harness(tmp_path, namespace_backend):
    return Harness(tmp_path, namespace_backend)


def invocation(payload: object = None, rid: str = "req") -> Invocation:
    return Invocation(request_id=rid, payload=json.dumps(payload or {}).encode(),
                      invoked_arn="arn:aws:lambda:us-east-1:123456789012:function:f")


def run(harness: Harness, scenario):
    async def main():
        try:
            return await asyncio.wait_for(scenario(), 90)
        finally:
            await harness.close()

    return asyncio.run(main())


def answer(harness: Harness, source: str, **kw):
    """The JSON answer of a new environment running ``source`` to its first invocation."""
    return json.loads(first_invoke(harness, harness.environment(source, **kw)).payload)


def first_invoke(harness: Harness, env, inv: Invocation | None = None):
    """Start ``env`` and answer one invocation; the harness ends its environments afterwards."""

    async def scenario():
        await env.start()
        return await env.invoke(inv or invocation())

    return run(harness, scenario)


PROBE = '''
import json, os, signal
def attempt(fn):
    try:
        return {"ok": True, "value": fn()}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
def handler(event, context):
    out = {}
    for name, path in event["read"].items():
        out["read_" + name] = attempt(lambda p=path: open(p).read())
    out["write_task"] = attempt(lambda: open("/var/task/evil.py", "w").write("x"))
    out["kill_server"] = attempt(lambda: os.kill(event["server_pid"], signal.SIGTERM))
    out["proc"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    out["uid"] = os.getuid()
    out["ptrace"] = attempt(lambda: open("/proc/%d/mem" % event["server_pid"], "rb").read(1))
    out["task_secret"] = open("/var/task/secret.txt").read()
    return out
'''


def test_cannot_read_other_code_shoal_data_or_shadow_nor_touch_the_server(harness):
    other = harness.environment("def handler(e, c):\n    return 'other'\n", name="other")
    env = harness.environment(PROBE)

    async def scenario():
        await other.start()
        await env.start()
        event = {
            "read": {"other_code": str(other.code_dir / "secret.txt"), "shoal_db": str(harness.tmp / "shoal.db"),
                     "shadow": "/etc/shadow", "root_home": "/root/.bash_history"},
            "server_pid": os.getpid(),
        }
        out = await env.invoke(invocation(event))
        after = await other.invoke(invocation(rid="still-works"))
        return json.loads(out.payload), after

    got, after = run(harness, scenario)
    for key in ("read_other_code", "read_shoal_db", "read_shadow", "read_root_home"):
        assert got[key]["ok"] is False, key
    assert got["read_other_code"]["error"] == "FileNotFoundError"
    assert got["read_shoal_db"]["error"] == "FileNotFoundError"
    assert got["read_shadow"]["error"] == "PermissionError"
    assert got["write_task"] == {"ok": False, "error": "OSError"}  # read-only file system
    assert got["kill_server"]["ok"] is False  # the server is not in its PID namespace
    assert got["ptrace"]["ok"] is False
    assert got["proc"] == [1]  # it sees only itself
    assert got["uid"] >= 100000
    assert got["task_secret"] == SECRET  # its own code is readable
    assert after.payload == b'"other"'


def test_fork_bomb_is_contained(harness):
    env = harness.environment(
        "import os, time\n"
        "def handler(e, c):\n"
        "    n = 0\n"
        "    try:\n"
        "        for _ in range(3000):\n"
        "            if os.fork() == 0:\n"
        "                time.sleep(60)\n"
        "                os._exit(0)\n"
        "            n += 1\n"
        "    except OSError as exc:\n"
        "        return {'forked': n, 'error': exc.errno}\n"
        "    return {'forked': n, 'error': None}\n",
        memory_size=2048, timeout=30)
    neighbour = harness.environment("def handler(e, c):\n    return 'fine'\n", name="n")

    async def scenario():
        await env.start()
        out = await env.invoke(invocation())
        await neighbour.start()
        return json.loads(out.payload), await neighbour.invoke(invocation())

    got, neighbour_out = run(harness, scenario)
    assert got.get("error") is not None and got["forked"] < 1024, got
    assert neighbour_out.payload == b'"fine"'


def test_memory_past_the_limit_is_runtime_out_of_memory(harness):
    env = harness.environment("def handler(e, c):\n    blocks = []\n"
                              "    while True:\n        blocks.append(bytearray(16 * 1024 * 1024))\n",
                              memory_size=128)

    out = first_invoke(harness, env, invocation(rid="oom"))
    assert json.loads(out.payload) == {"errorType": "Runtime.OutOfMemory",
                                       "errorMessage": "RequestId: oom Error: Runtime exited with error: signal: killed"}
    assert out.log_lines[-1].endswith("Status: error\tError Type: Runtime.OutOfMemory")
    assert "Max Memory Used: 128 MB" in out.log_lines[-1]


def test_tmp_is_bounded_by_ephemeral_storage_and_private(harness):
    env = harness.environment(
        "import os\n"
        "def handler(e, c):\n"
        "    written = 0\n"
        "    try:\n"
        "        with open('/tmp/fill', 'wb') as fh:\n"
        "            while written < 2048 * 1024 * 1024:\n"
        "                fh.write(b'x' * (1 << 20)); fh.flush(); written += 1 << 20\n"
        "    except OSError as exc:\n"
        "        return {'mb': written >> 20, 'errno': exc.errno}\n"
        "    return {'mb': written >> 20, 'errno': None}\n",
        ephemeral_storage=512, memory_size=1024, timeout=30)  # tmpfs pages count against memory

    got = json.loads(first_invoke(harness, env).payload)
    assert got["errno"] == 28  # ENOSPC
    assert 500 <= got["mb"] <= 512


@pytest.mark.parametrize("size", [512, 1024, 10240])
def test_tmp_has_the_functions_ephemeral_storage_size(harness, size):
    """A stem cell mounts /tmp ahead at the default size; an environment of another size gets its own."""
    got = answer(
        harness,
        "import os\n"
        "def handler(e, c):\n"
        "    st = os.statvfs('/tmp')\n"
        "    return {'mb': st.f_blocks * st.f_frsize >> 20, 'owner': os.stat('/tmp').st_uid, 'uid': os.getuid()}\n",
        ephemeral_storage=size)
    assert got["mb"] == size
    assert got["owner"] == got["uid"] != 0


@pytest.mark.parametrize(("memory", "share"), [(128, 0.1), (885, 0.5)])
def test_cpu_share_follows_memory(harness, memory, share):
    measured = answer(
        harness,
        "import time\n"
        "def handler(e, c):\n"
        "    wall0, cpu0 = time.monotonic(), time.process_time()\n"
        "    while time.monotonic() - wall0 < 1.5:\n"
        "        pass\n"
        "    return (time.process_time() - cpu0) / (time.monotonic() - wall0)\n",
        memory_size=memory)
    assert share * 0.5 <= measured <= share * 1.3 + 0.03, measured


def test_cannot_take_another_environments_events(harness):
    victim = harness.environment("def handler(e, c):\n    return 'victim'\n", name="victim")
    thief = harness.environment(
        "import socket\n"
        "def handler(e, c):\n"
        "    host, port = e['api'].split(':')\n"
        "    try:\n"
        "        s = socket.create_connection((host, int(port)), timeout=2)\n"
        "        s.sendall(b'GET /2018-06-01/runtime/invocation/next HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
        "        data = s.recv(4096)\n"
        "        return {'got': data.decode(errors='replace')}\n"
        "    except OSError as exc:\n"
        "        return {'error': type(exc).__name__}\n",
        name="thief")

    async def scenario():
        await victim.start()
        await thief.start()
        api = victim.endpoint.address
        stolen = await thief.invoke(invocation({"api": api}))
        served = await victim.invoke(invocation(rid="victim-event"))
        return json.loads(stolen.payload), served, victim.endpoint.refused

    stolen, served, refused = run(harness, scenario)
    assert stolen.get("got", "") == ""  # closed without a byte, or refused
    assert served.payload == b'"victim"'
    assert refused >= 1


def test_idle_environment_is_frozen_between_invocations(harness):
    env = harness.environment("def handler(e, c):\n    return 1\n")

    async def scenario():
        await env.start()
        await env.invoke(invocation())
        stat = Path(f"/proc/{env.process.pid}/stat")
        deadline = time.monotonic() + 5  # SIGSTOP takes effect when the process next leaves the kernel
        while stat.read_text().split()[2] != "T" and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        state_idle = stat.read_text().split()[2]
        second = await env.invoke(invocation(rid="second"))  # thawed for the next one
        assert second.payload == b"1"
        return state_idle

    assert run(harness, scenario) == "T"  # stopped: no CPU while idle


def test_no_network_setting_blocks_connections_but_not_the_runtime_api(tmp_path):
    backend = NamespaceBackend(network=False)
    harness = Harness(tmp_path, backend)
    env = harness.environment(
        "import socket\n"
        "def handler(e, c):\n"
        "    try:\n"
        "        socket.create_connection(('127.0.0.1', e['port']), timeout=2).close()\n"
        "        return 'connected'\n"
        "    except OSError as exc:\n"
        "        return type(exc).__name__\n")

    async def scenario():
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            await env.start()
            return await env.invoke(invocation({"port": port}))
        finally:
            server.close()

    try:
        out = run(harness, scenario)
    finally:
        backend.close()
    assert out.payload == b'"ConnectionRefusedError"'  # the host's loopback is not its loopback


def test_reaping_leaves_no_process_and_no_cgroup(harness):
    env = harness.environment(
        "import subprocess\n"
        "def handler(e, c):\n"
        "    subprocess.Popen(['sleep', '600'], start_new_session=True)\n"
        "    return 'ok'\n")

    async def scenario():
        await env.start()
        await env.invoke(invocation())
        slot = env.process.slot
        pid = env.process.pid
        assert len(slot.pids()) >= 2
        await env.shutdown()
        deadline = time.monotonic() + 5
        while slot.pids() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return slot, pid

    slot, pid = run(harness, scenario)
    assert slot.pids() == []
    assert not Path(f"/proc/{pid}").exists()


def test_cannot_signal_another_environment(harness):
    victim = harness.environment("import time\ndef handler(e, c):\n    return 'alive'\n", name="victim")
    attacker = harness.environment(
        "import os, signal\n"
        "def handler(e, c):\n"
        "    try:\n"
        "        os.kill(e['pid'], signal.SIGKILL)\n"
        "        return 'killed'\n"
        "    except OSError as exc:\n"
        "        return type(exc).__name__\n",
        name="attacker")

    async def scenario():
        await victim.start()
        await attacker.start()
        host_pid = victim.process.pid  # the victim's PID 1 as the host sees it
        tried = await attacker.invoke(invocation({"pid": host_pid}))
        still = await victim.invoke(invocation(rid="after"))
        return tried, still

    tried, still = run(harness, scenario)
    assert tried.payload == b'"ProcessLookupError"'  # not in its PID namespace
    assert still.payload == b'"alive"'


# Reads this process's own memory between ``env_start`` and ``env_end`` of /proc/self/stat: the environment it
# was started with (libc's write() returns EFAULT, not a crash, for an unmapped address). An environment forked
# from a fork-server would find the fork-server's start-up environment there.
INITIAL_ENVIRONMENT = '''
import ctypes, os
def handler(event, context):
    fields = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
    start, end = int(fields[47]), int(fields[48])
    libc = ctypes.CDLL(None, use_errno=True)
    libc.write.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
    r, w = os.pipe()
    try:
        n = libc.write(w, start, end - start)
        data = os.read(r, n) if n > 0 else b""
    finally:
        os.close(r)
        os.close(w)
    return {"size": end - start, "read": len(data), "text": data.decode(errors="replace")}
'''


def test_server_environment_is_not_in_an_environments_memory(tmp_path, monkeypatch):
    """The server's variables (database URLs, credentials) never reach a function, not even in the start-up
    environment a fork-server's memory keeps."""
    monkeypatch.setenv("SHOAL_TEST_SERVER_SECRET", SECRET)
    backend = NamespaceBackend()  # its own fork-server, started with the variable above in the server's env
    harness = Harness(tmp_path, backend)
    env = harness.environment(INITIAL_ENVIRONMENT)
    try:
        out = first_invoke(harness, env)
    finally:
        backend.close()
    got = json.loads(out.payload)
    assert got["size"] > 0 and got["read"] == got["size"], got  # the region was read whole
    assert "LANG=" in got["text"]
    assert SECRET not in got["text"] and "SHOAL_TEST_SERVER_SECRET" not in got["text"]

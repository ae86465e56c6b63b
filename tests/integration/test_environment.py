"""Real execution environments: a real interpreter, the real bootstrap, each sandbox backend."""

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
from tests.function_configs import function_config
from tests.integration.conftest import NS_OK, NS_WHY

RUNTIME = PythonFamily.runtime(f"python{sys.version_info[0]}.{sys.version_info[1]}", os.path.realpath(sys.executable),
                               sys.version.split()[0])

def config(**kw):
    return function_config(**{"runtime": RUNTIME.id, **kw})


@pytest.fixture
def backend(sandbox_backend):
    return sandbox_backend


@pytest.fixture
def make_env(tmp_path, backend):
    made = []
    logs = FileLogStore(tmp_path / "logs")

    def make(source, **kw):
        code = tmp_path / f"code{len(made)}"
        code.mkdir()
        (code / "app.py").write_text(source)
        env = Environment(config(**kw), RUNTIME, backend, code, tmp_path / "envs", logs.emit,
                          Settings(region="us-east-1", init_timeout=10, endpoint="http://127.0.0.1:1"))
        made.append(env)
        return env

    yield make
    for env in made:  # the fixture ends every process it started
        if env.process is not None and env.process.returncode is None:
            asyncio.run(_kill(env))
        if env.process is not None:
            assert not Path(f"/proc/{env.process.pid}").exists() or _is_zombie_or_gone(env.process.pid)


async def _kill(env):
    env.process.kill()


def _is_zombie_or_gone(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def invocation(rid="req-1", payload=b"{}"):
    return Invocation(request_id=rid, payload=payload, invoked_arn="arn:aws:lambda:us-east-1:123456789012:function:f")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_invoke_warm_reuse_and_output_before_end(make_env):
    env = make_env("COUNT = 0\nprint('init line')\n"
                   "def handler(event, context):\n"
                   "    global COUNT\n    COUNT += 1\n    print('during', event['n'])\n"
                   "    return {'count': COUNT, 'rid': context.aws_request_id}\n")

    async def scenario():
        await env.start()
        first = await env.invoke(invocation("a", b'{"n": 1}'))
        second = await env.invoke(invocation("b", b'{"n": 2}'))
        await env.shutdown()
        return first, second

    first, second = run(scenario())
    assert json.loads(first.payload) == {"count": 1, "rid": "a"}
    assert json.loads(second.payload) == {"count": 2, "rid": "b"}
    assert first.log_lines[0] == "START RequestId: a Version: $LATEST"
    assert first.log_lines[1] == "during 1"  # drained before END, in order
    assert first.log_lines[2] == "END RequestId: a"
    assert first.log_lines[3].startswith("REPORT RequestId: a\tDuration: ") and "Init Duration" in first.log_lines[3]
    assert "Init Duration" not in second.log_lines[-1]
    assert first.init_ms is not None and second.init_ms is None


def test_timeout_kills_and_reports(make_env):
    env = make_env("import time\ndef handler(e, c):\n    time.sleep(30)\n", timeout=1)

    async def scenario():
        await env.start()
        started = time.monotonic()
        out = await env.invoke(invocation("t"))
        elapsed = time.monotonic() - started
        await env.shutdown()
        return out, elapsed

    out, elapsed = run(scenario())
    assert out.function_error and out.status == "timeout"
    assert json.loads(out.payload) == {"errorType": "Sandbox.Timedout",
                                       "errorMessage": "RequestId: t Error: Task timed out after 1.00 seconds"}
    assert any(line.endswith("t Task timed out after 1.00 seconds") for line in out.log_lines)
    assert out.log_lines[-1].endswith("\tStatus: timeout")
    assert not env.alive
    assert elapsed < 20  # it did not wait for the 30 s sleep


def test_exit_is_runtime_exit_error(make_env):
    env = make_env("import os\ndef handler(e, c):\n    print('bye')\n    os._exit(3)\n")

    async def scenario():
        await env.start()
        out = await env.invoke(invocation("x"))
        await env.shutdown()
        return out

    out = run(scenario())
    assert json.loads(out.payload) == {"errorType": "Runtime.ExitError",
                                       "errorMessage": "RequestId: x Error: Runtime exited with error: exit status 3"}
    assert "RequestId: x Error: Runtime exited with error: exit status 3" in out.log_lines
    assert out.log_lines[-1].endswith("Status: error\tError Type: Runtime.ExitError")
    assert not env.alive


def test_init_error_is_answered_to_the_first_invoke(make_env):
    env = make_env("import nope_not_a_module\ndef handler(e, c):\n    return 1\n")

    async def scenario():
        await env.start()
        out = await env.invoke(invocation("i"))
        await env.shutdown()
        return out

    out = run(scenario())
    body = json.loads(out.payload)
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert body["errorMessage"] == "Unable to import module 'app': No module named 'nope_not_a_module'"
    assert out.function_error and not env.alive


def _processes_with(marker):
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_shutdown_kills_daemonised_children(make_env):
    marker = f"{300 + os.getpid() % 1000}.{time.time_ns() % 10**6}"  # a unique `sleep` argument
    env = make_env("import subprocess, os\n"
                   "def handler(e, c):\n"
                   f"    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
                   "    return 'started'\n")

    async def scenario():
        await env.start()
        out = await env.invoke(invocation("d"))
        deadline = time.monotonic() + 5
        while not _processes_with(f"sleep {marker}") and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert _processes_with(f"sleep {marker}"), "the daemon should be running before shutdown"
        await env.shutdown()
        return out

    out = run(scenario())
    assert out.payload == b'"started"'
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(not _is_zombie_or_gone(p) for p in _processes_with(f"sleep {marker}")):
        time.sleep(0.02)
    assert all(_is_zombie_or_gone(p) for p in _processes_with(f"sleep {marker}"))


def test_namespace_view_task_root_read_only_and_private_tmp(tmp_path, namespace_backend):
    marker = Path("/tmp") / f"shoal-host-marker-{os.getpid()}"
    marker.write_text("host")
    try:
        code = tmp_path / "code"
        code.mkdir()
        (code / "app.py").write_text(
            "import os\n"
            "def handler(e, c):\n"
            "    try:\n        open('/var/task/new.txt', 'w').write('x'); wrote = True\n"
            "    except OSError:\n        wrote = False\n"
            "    open('/tmp/mine', 'w').write('1')\n"
            f"    return {{'cwd': os.getcwd(), 'wrote': wrote, 'host_tmp_visible': os.path.exists('{marker}'),"
            " 'tmp': sorted(os.listdir('/tmp')), 'task_root': os.environ['LAMBDA_TASK_ROOT']}\n")
        logs = FileLogStore(tmp_path / "logs")
        env = Environment(config(), RUNTIME, namespace_backend, code, tmp_path / "envs", logs.emit,
                          Settings(region="us-east-1", init_timeout=10, endpoint="http://127.0.0.1:1"))

        async def scenario():
            await env.start()
            out = await env.invoke(invocation())
            await env.shutdown()
            return json.loads(out.payload)

        got = run(scenario())
        assert got == {"cwd": "/var/task", "wrote": False, "host_tmp_visible": False, "tmp": ["mine"],
                       "task_root": "/var/task"}
        assert not (code / "new.txt").exists()
        assert not Path("/tmp/mine").exists()
    finally:
        marker.unlink()


def test_process_backend_applies_rlimits(tmp_path):
    from shoal.sandbox.process import ProcessBackend

    logs = FileLogStore(tmp_path / "logs")
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(
        "import resource\n"
        "def handler(e, c):\n"
        "    return {name: resource.getrlimit(getattr(resource, name))[0]\n"
        "            for name in ('RLIMIT_AS', 'RLIMIT_NOFILE', 'RLIMIT_CORE', 'RLIMIT_CPU')}\n")
    env = Environment(config(memory_size=256), RUNTIME, ProcessBackend(), code, tmp_path / "envs", logs.emit,
                      Settings(region="us-east-1", init_timeout=10, endpoint="http://127.0.0.1:1"))

    async def scenario():
        await env.start()
        out = await env.invoke(invocation())
        await env.shutdown()
        return json.loads(out.payload)

    got = run(scenario())
    assert got == {"RLIMIT_AS": (256 + 16 * 1024) * 1024 * 1024, "RLIMIT_NOFILE": 1024, "RLIMIT_CORE": 0,
                   "RLIMIT_CPU": 3600}


def _cpu_quota(slot):
    if slot.version == 2:
        return int((slot.paths["unified"] / "cpu.max").read_text().split()[0].replace("max", "-1"))
    return int((slot.paths["cpu"] / "cpu.cfs_quota_us").read_text())


def _cpu_period(slot):
    if slot.version == 2:
        return int((slot.paths["unified"] / "cpu.max").read_text().split()[1])
    return int((slot.paths["cpu"] / "cpu.cfs_period_us").read_text())


def test_cpu_follows_memory_after_init(tmp_path, namespace_backend):
    """INIT runs unthrottled (AWS's boost); from the first invocation on, CPU is MemorySize / 1769 vCPUs, at
    least ``cpu_floor`` (0.1 vCPU)."""
    from shoal.sandbox.cgroups import CPU_PERIOD_US, cpu_quota_us

    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(e, c):\n    return 'ok'\n")
    logs = FileLogStore(tmp_path / "logs")
    envs = {
        memory: Environment(config(memory_size=memory, name=f"f{memory}"), RUNTIME, namespace_backend, code,
                            tmp_path / "envs", logs.emit,
                            Settings(region="us-east-1", init_timeout=10, endpoint="http://127.0.0.1:1"))
        for memory in (128, 1769)
    }

    periods = {}

    async def scenario():
        quotas = {}
        for memory, env in envs.items():
            await env.start()
            await env.invoke(invocation())
            deadline = time.monotonic() + 10  # applied while the first invocation starts
            while time.monotonic() < deadline and _cpu_quota(env.process.slot) != cpu_quota_us(memory, 0.1, os.cpu_count() or 1):
                await asyncio.sleep(0.01)
            quotas[memory] = _cpu_quota(env.process.slot)
            periods[memory] = _cpu_period(env.process.slot)
        for env in envs.values():
            await env.shutdown()
        return quotas

    quotas = run(scenario())
    assert quotas[128] == CPU_PERIOD_US // 10  # the floor: 0.1 vCPU
    assert quotas[1769] == CPU_PERIOD_US  # one vCPU
    assert periods == {128: CPU_PERIOD_US, 1769: CPU_PERIOD_US}


def test_a_stem_cell_is_replaced_once_its_environments_start_is_over(tmp_path):
    """The next stem cell is made after the start it served, never during it (it would take the CPU)."""
    if not NS_OK:
        pytest.skip(f"namespace sandbox unavailable on this host: {NS_WHY}")
    from shoal.sandbox.namespace import NamespaceBackend

    backend = NamespaceBackend(stem_cells=1)
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(e, c):\n    return 'ok'\n")
    logs = FileLogStore(tmp_path / "logs")
    env = Environment(config(), RUNTIME, backend, code, tmp_path / "envs", logs.emit,
                      Settings(region="us-east-1", init_timeout=10, endpoint="http://127.0.0.1:1"))

    def stems():
        return sum(len(ready) for ready in backend._stems.values()) + sum(backend._making.values())

    async def scenario():
        try:
            await env.start()  # no stem was ready: one was made for it
            during = stems()
            out = await env.invoke(invocation())
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not sum(len(r) for r in backend._stems.values()):
                await asyncio.sleep(0.01)
            return during, out, sum(len(r) for r in backend._stems.values())
        finally:
            await env.shutdown()

    try:
        during, out, after = run(scenario())
    finally:
        backend.close()
    assert out.payload == b'"ok"'
    assert during == 0  # none made (or being made) while the start was on its way
    assert after == 1  # ... and one ready once it was over


def test_a_closed_cgroup_pool_leaves_no_slot_behind():
    """A stem still on its way when the server stops gives its slot back (or asks for one) after the pool was
    closed: the slot is removed, none is made."""
    if not NS_OK:
        pytest.skip(f"namespace sandbox unavailable on this host: {NS_WHY}")
    from shoal.sandbox.cgroups import CgroupPool, CgroupUnavailable

    pool = CgroupPool(f"pid{os.getpid()}-closing")
    late = pool.take()
    pool.close()
    pool.give_back(late)
    with pytest.raises(CgroupUnavailable):
        pool.take()
    assert not any(path.exists() for path in late.paths.values())
    assert not any(base.exists() for base in pool.bases.values())

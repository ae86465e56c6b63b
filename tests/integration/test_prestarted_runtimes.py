"""Pre-started runtimes (namespace sandbox): a generic runtime process started before its function is known,
then specialised with the function's code, environment, limits and ``/tmp``.

What must hold is what holds for a runtime started for its function: its own variables (and none of the
standby's), its own uid and ``/tmp``, its code read-only at ``/var/task``, exits and signals reported as they
happened, and no way back to what the privileged init that specialised it could reach. A function whose
variables the runtime reads only at start-up (``NODE_OPTIONS``, ``LD_PRELOAD`` …) gets a runtime started for
it. Each suite runs on a real interpreter and skips, saying why, where the host lacks it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.core.types import FunctionConfig
from shoal.environments.environment import Environment, Invocation, Outcome, Settings
from shoal.runtimes.nodejs import NodeFamily
from shoal.sandbox import namespace
from shoal.sandbox.namespace import NamespaceBackend
from tests.function_configs import function_config

NS_OK, NS_WHY = namespace.available()
pytestmark = pytest.mark.skipif(not NS_OK, reason=f"namespace sandbox unavailable on this host: {NS_WHY}")
NODE = next(iter(NodeFamily().discover({}).values()), None)

PROBE = """
const fs = require('fs');
let count = 0;
function attempt(f) { try { return f(); } catch (e) { return e.code; } }
exports.handler = async (event) => {
  count += 1;
  if (event.write) fs.writeFileSync('/tmp/' + event.write, 'x');
  return {
    count, pid: process.pid, ppid: process.ppid, uid: process.getuid(), cwd: process.cwd(),
    mine: process.env.MINE ?? null, standby: process.env.SHOAL_STANDBY_FD ?? null,
    fn: process.env.AWS_LAMBDA_FUNCTION_NAME, tmp: fs.readdirSync('/tmp').sort(),
    task: fs.readdirSync('.').sort(),
    vendored: attempt(() => require('vendored')),
    writeTask: attempt(() => fs.writeFileSync('/var/task/x', 'x')),
    initFds: attempt(() => fs.readdirSync('/proc/1/fd')),
    initRoot: attempt(() => fs.readdirSync('/proc/1/root')),
    heapLimitMb: Math.round(require('v8').getHeapStatistics().heap_size_limit / 1048576),
  };
};
"""


def config(name: str, runtime_id: str, environment: dict[str, str] | None = None) -> FunctionConfig:
    return function_config(
        name=name,
        runtime=runtime_id,
        handler="index.handler",
        code_sha256="x",
        timeout=5,
        environment=environment or {},
    )


@pytest.fixture
def backend() -> Iterator[NamespaceBackend]:
    made = NamespaceBackend(stem_cells=0, await_standby=True)
    yield made
    made.close()


class Harness:
    def __init__(self, backend: NamespaceBackend, tmp_path: Path) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.made: list[Environment] = []
        self.lines: list[str] = []

    def environment(
        self, name: str, files: dict[str, str], layer: dict[str, str] | None = None, **env: str
    ) -> Environment:
        assert NODE is not None
        code = self.tmp_path / f"code-{name}"
        for path, source in files.items():
            (code / path).parent.mkdir(parents=True, exist_ok=True)
            (code / path).write_text(source)
        opt = None
        if layer is not None:
            opt = self.tmp_path / f"opt-{name}"
            for path, source in layer.items():
                (opt / path).parent.mkdir(parents=True, exist_ok=True)
                (opt / path).write_text(source)
        made = Environment(
            config(name, NODE.id, env),
            NODE,
            self.backend,
            code,
            self.tmp_path / "envs",
            lambda account, group, stream, ts, message: self.lines.append(message),
            Settings(region="us-east-1", init_timeout=10, endpoint="http://127.0.0.1:1"),
            opt_dir=opt,
        )
        self.made.append(made)
        return made

    def end(self) -> None:
        for made in self.made:
            if made.process is not None and made.process.returncode is None:
                made.process.kill()


@pytest.fixture
def harness(backend: NamespaceBackend, tmp_path: Path) -> Iterator[Harness]:
    made = Harness(backend, tmp_path)
    yield made
    made.end()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


async def invoke(env: Environment, payload: Any = None, rid: str = "r") -> Outcome:
    body = json.dumps(payload or {}).encode()
    return await env.invoke(Invocation(request_id=rid, payload=body, invoked_arn="arn:aws:lambda:x"))


needs_node = pytest.mark.skipif(NODE is None, reason="no node 18, 20 or 22 on this host")


@needs_node
def test_specialised_node_is_its_functions_own(harness: Harness) -> None:
    files = {"index.js": PROBE, "vendor/vendored/index.js": "module.exports = 'found';"}

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        a = harness.environment("a", files, MINE="alpha", NODE_PATH="/var/task/vendor")
        b = harness.environment("b", files, MINE="beta")
        await a.start()
        await b.start()
        first = json.loads((await invoke(a, {"write": "from-a"})).payload)
        second = json.loads((await invoke(a)).payload)
        other = json.loads((await invoke(b)).payload)
        return first, second, other

    first, second, other = run(scenario())
    # a runtime under the launcher's init (PID 1), specialised: not one started for its function as PID 1
    assert (first["pid"], first["ppid"]) == (2, 1)
    assert first["mine"] == "alpha" and other["mine"] == "beta"
    assert first["fn"] == "a" and other["fn"] == "b"
    assert first["standby"] is None and other["standby"] is None
    assert first["cwd"] == "/var/task" and first["task"] == ["index.js", "vendor"]
    assert first["vendored"] == "found"  # NODE_PATH is re-read when the function's environment arrives
    assert other["vendored"] == "MODULE_NOT_FOUND"
    assert first["uid"] != other["uid"] and first["uid"] >= 100000
    assert second["count"] == 2 and second["tmp"] == ["from-a"]  # the same warm environment
    assert other["tmp"] == []  # its own /tmp
    assert first["writeTask"] == "EROFS"
    # the init that grafted the code in ran as root; the function cannot reach what it held, nor its root
    assert first["initFds"] == "EACCES" and first["initRoot"] == "EACCES"


@needs_node
def test_exit_and_signal_of_a_specialised_runtime_are_reported(harness: Harness) -> None:
    async def scenario() -> tuple[Outcome, Outcome, int | None]:
        exits = harness.environment("exits", {"index.js": "exports.handler = async () => process.exit(3);"})
        killed = harness.environment(
            "killed", {"index.js": "exports.handler = async () => process.kill(process.pid, 'SIGKILL');"}
        )
        await exits.start()
        await killed.start()
        assert exits.process is not None and exits.process.runtime_pid() != exits.process.pid
        out_exit = await invoke(exits)
        out_kill = await invoke(killed)
        return out_exit, out_kill, exits.process.returncode

    out_exit, out_kill, code = run(scenario())
    assert json.loads(out_exit.payload)["errorMessage"] == (
        "RequestId: r Error: Runtime exited with error: exit status 3"
    )
    assert json.loads(out_kill.payload)["errorMessage"] == (
        "RequestId: r Error: Runtime exited with error: signal: killed"
    )
    assert code == 3


@needs_node
def test_start_time_variables_get_a_runtime_started_for_the_function(harness: Harness) -> None:
    async def scenario() -> dict[str, Any]:
        env = harness.environment("opts", {"index.js": PROBE}, NODE_OPTIONS="--max-old-space-size=96")
        await env.start()
        return json.loads((await invoke(env)).payload)  # type: ignore[no-any-return]

    got = run(scenario())
    assert got["pid"] == 1  # the runtime itself is PID 1: started with NODE_OPTIONS, not specialised
    assert got["heapLimitMb"] < 200  # 96 MB old space (+ young generation); by default it is gigabytes


@needs_node
def test_a_standby_runtime_that_died_is_not_handed_out(backend: NamespaceBackend, harness: Harness) -> None:
    backend.await_standby = False
    backend.stem_cells = 1

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        first = harness.environment("first", {"index.js": PROBE})
        await first.start()  # none ready: started directly; one standby is made meanwhile
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
            kind.standby is not None and stems for kind, stems in backend._stems.items()
        ):
            await asyncio.sleep(0.02)
        standby = next(s for kind, stems in backend._stems.items() if kind.standby for s in stems)
        with open(f"/proc/{standby.pid}/task/{standby.pid}/children") as fh:
            runtime_pid = int(fh.read().split()[0])
        os.kill(runtime_pid, signal.SIGKILL)  # the waiting runtime dies: its init notices and ends
        while time.monotonic() < deadline and namespace._alive(standby.pid):
            await asyncio.sleep(0.02)
        second = harness.environment("second", {"index.js": PROBE})
        await second.start()
        return json.loads((await invoke(first)).payload), json.loads((await invoke(second)).payload)

    first, second = run(scenario())
    assert first["pid"] == 1
    assert second["pid"] == 1 and second["count"] == 1  # started for it, not the dead standby


@needs_node
def test_a_specialised_node_sees_its_layers_at_opt(harness: Harness) -> None:
    layer = {"nodejs/node_modules/greeting/index.js": "module.exports = 'from the layer';"}
    handler = "exports.handler = async () => [require('greeting'), process.pid];"

    async def scenario() -> list[Any]:
        env = harness.environment("layered", {"index.js": handler}, layer=layer)
        await env.start()
        return json.loads((await invoke(env)).payload)  # type: ignore[no-any-return]

    greeting, pid = run(scenario())
    assert greeting == "from the layer" and pid == 2  # NODE_PATH's /opt entries, in a specialised node

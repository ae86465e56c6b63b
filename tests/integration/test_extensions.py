"""External extensions (Extensions API 2020-01-01, spec §3.2, §3.4) in real environments: a POSIX shell
extension using curl, started in the sandbox before the runtime, seeing INVOKE and SHUTDOWN."""

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from shoal.environments.environment import Environment, Invocation, Settings
from shoal.runtimes.python import PythonFamily
from tests.function_configs import function_config

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="the test extension needs curl")

RUNTIME = PythonFamily.runtime(f"python{sys.version_info[0]}.{sys.version_info[1]}", os.path.realpath(sys.executable),
                               sys.version.split()[0])
HANDLER = "def handler(event, context):\n    return {'ok': True}\n"

EXTENSION = """#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension"
NAME=$(basename "$0")
%(before)s
HEAD=$(curl -sS -D - -o /dev/null -X POST "$API/register" -H "Lambda-Extension-Name: $NAME" \\
       -d '{"events":["INVOKE","SHUTDOWN"]}')
ID=$(printf '%%s\\n' "$HEAD" | grep -i '^lambda-extension-identifier:' | cut -d' ' -f2 | tr -d '\\r')
echo "[ext] registered $ID"
%(after)s
while true; do
  EV=$(curl -sS "$API/event/next" -H "Lambda-Extension-Identifier: $ID")
  echo "[ext] event $EV"
  case "$EV" in *SHUTDOWN*) echo "[ext] bye"; exit 0;; esac
done
"""


def extension(before: str = "", after: str = "") -> str:
    return EXTENSION % {"before": before, "after": after}


def config(**kw):
    return function_config(**{"runtime": RUNTIME.id, **kw})


@pytest.fixture
def make_env(tmp_path):
    made = []

    def make(backend, extensions=None, fork_server=True, **kw):
        n = len(made)
        code = tmp_path / f"code{n}"
        code.mkdir()
        (code / "app.py").write_text(HANDLER)
        opt = tmp_path / f"opt{n}"
        opt.mkdir()
        if extensions is not None:
            (opt / "extensions").mkdir()
            for name, source in extensions.items():
                path = opt / "extensions" / name
                path.write_text(source)
                path.chmod(0o755)
            (opt / "extensions" / "README").write_text("not executable: not an extension\n")
            os.chmod(opt, 0o755)
        lines: list[str] = []
        env = Environment(config(**kw), RUNTIME, backend, code, tmp_path / "envs",
                          lambda *args: lines.append(args[-1]),
                          Settings(region="us-east-1", init_timeout=10, endpoint="http://127.0.0.1:1",
                                   fork_server=fork_server),
                          opt_dir=opt)
        made.append(env)
        return env, lines

    yield make
    for env in made:
        if env.process is not None and env.process.returncode is None:
            env.process.kill()


def invocation(rid):
    return Invocation(request_id=rid, payload=b"{}", invoked_arn="arn:aws:lambda:us-east-1:123456789012:function:f")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def events(lines):
    return [json.loads(line.split("[ext] event ", 1)[1]) for line in lines if line.startswith("[ext] event {")]


@pytest.mark.parametrize("fork_server", [True, False], ids=["zygote", "exec"])
def test_extension_sees_init_invokes_and_shutdown(make_env, sandbox_backend, fork_server):
    env, lines = make_env(sandbox_backend, {"myext": extension()}, fork_server=fork_server)

    async def scenario():
        await env.start()
        assert env.endpoint is not None and env.endpoint.ready.done()
        first = await env.invoke(invocation("rid-a"))
        second = await env.invoke(invocation("rid-b"))
        await asyncio.sleep(0.2)  # the extension parks again, the environment freezes
        await env.shutdown()
        return first, second

    first, second = run(scenario())
    assert json.loads(first.payload) == {"ok": True} and json.loads(second.payload) == {"ok": True}
    registered = next(i for i, line in enumerate(lines) if line.startswith("[ext] registered "))
    start = next(i for i, line in enumerate(lines) if line.startswith("START "))
    assert registered < start, lines  # INIT waited for the extension
    assert len(lines[registered].split()[-1]) == 36  # its identifier, a UUID
    seen = events(lines)
    invokes = [e for e in seen if e["eventType"] == "INVOKE"]
    assert [e["requestId"] for e in invokes] == ["rid-a", "rid-b"], lines
    assert invokes[0]["invokedFunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:f"
    assert invokes[0]["tracing"]["type"] == "X-Amzn-Trace-Id" and invokes[0]["tracing"]["value"].startswith("Root=")
    assert isinstance(invokes[0]["deadlineMs"], int)
    shutdowns = [e for e in seen if e["eventType"] == "SHUTDOWN"]
    assert len(shutdowns) == 1 and shutdowns[0]["shutdownReason"] == "spindown", lines
    assert "[ext] bye" in lines
    assert "README" not in env.endpoint._expected


def test_function_without_extensions_is_unchanged(make_env, sandbox_backend):
    env, lines = make_env(sandbox_backend, None)

    async def scenario():
        await env.start()
        out = await env.invoke(invocation("plain"))
        await env.shutdown()
        return out

    out = run(scenario())
    assert json.loads(out.payload) == {"ok": True}
    assert env.endpoint is not None and env.endpoint.extensions == {}
    assert not any(line.startswith("[ext]") for line in lines)


def test_bad_name_and_unknown_identifier_are_refused(make_env, namespace_backend):
    before = """
echo "[ext] wrong-name $(curl -sS -X POST "$API/register" -H 'Lambda-Extension-Name: not-there' -d '{"events":[]}')"
echo "[ext] unknown-id $(curl -sS "$API/event/next" -H 'Lambda-Extension-Identifier: 00000000-0000-0000-0000-000000000000')"
"""
    env, lines = make_env(namespace_backend, {"goodext": extension(before=before)})

    async def scenario():
        await env.start()
        out = await env.invoke(invocation("x"))
        await env.shutdown()
        return out

    out = run(scenario())
    assert json.loads(out.payload) == {"ok": True}
    wrong = next(line for line in lines if line.startswith("[ext] wrong-name "))
    assert json.loads(wrong.split(" ", 2)[2])["errorType"] == "Extension.InvalidExtensionName"
    unknown = next(line for line in lines if line.startswith("[ext] unknown-id "))
    assert json.loads(unknown.split(" ", 2)[2])["errorType"].startswith("Extension.")


def test_extension_init_error_fails_init(make_env, namespace_backend):
    after = """
curl -sS -o /dev/null -X POST "$API/init/error" -H "Lambda-Extension-Identifier: $ID" \\
     -H 'Lambda-Extension-Function-Error-Type: Extension.ConfigInvalid' -d '{"errorMessage":"bad config"}'
exit 1
"""
    env, lines = make_env(namespace_backend, {"failing": extension(after=after)})

    async def scenario():
        await env.start()
        out = await env.invoke(invocation("e"))
        await env.shutdown()
        return out

    out = run(scenario())
    assert out.function_error and out.error_type == "Extension.InitError"
    assert json.loads(out.payload)["errorType"] == "Extension.InitError"
    assert any(line.startswith("INIT_REPORT") and "Extension.InitError" in line for line in lines), lines

"""Stems of a kind copy one shared root that their launcher daemon built once, in a mount namespace of its
own (``launcher._make_template``): what each environment may write stays its own, the shared part is
read-only, and the host never sees a mount of it."""

from __future__ import annotations

import json

from tests.integration.conftest import needs_namespace
from tests.integration.test_sandbox_security import Harness, invocation, run

pytestmark = needs_namespace

WRITER = """
import os

def handler(event, context):
    mark = event["mark"]
    out = {"shm": sorted(os.listdir("/dev/shm")), "tmp": sorted(os.listdir("/tmp"))}
    for path in ("/dev/shm/" + mark, "/tmp/" + mark):
        with open(path, "w") as f:
            f.write(mark)
    refused = []
    for path in ("/" + mark, "/dev/" + mark, "/var/" + mark):
        try:
            open(path, "w").close()
        except OSError:
            refused.append(path)
    out["refused"] = refused
    out["proc_self"] = os.readlink("/proc/self")
    return out
"""


def _mounts() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


def test_stems_of_a_kind_share_a_read_only_root_and_keep_their_own_tmp_shm_and_proc(tmp_path, namespace_backend):
    harness = Harness(tmp_path, namespace_backend)
    before = _mounts()
    envs = [harness.environment(WRITER, name=f"w{i}") for i in range(3)]

    async def scenario():
        answers = []
        for i, env in enumerate(envs):
            await env.start()
            out = await env.invoke(invocation({"mark": f"m{i}"}))
            assert not out.function_error, out.payload
            answers.append(json.loads(out.payload))
        return answers, _mounts()

    answers, during = run(harness, scenario)
    for i, got in enumerate(answers):
        mark = f"m{i}"
        assert got["shm"] == [] and got["tmp"] == []  # nothing of the environments before
        assert got["refused"] == ["/" + mark, "/dev/" + mark, "/var/" + mark]
        assert got["proc_self"] == "1"  # its own /proc, of its own PID namespace
    assert during == before  # the shared roots are mounted where only the daemon and its stems see them
    assert _mounts() == before

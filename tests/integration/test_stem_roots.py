"""Stems of a kind copy one shared root that their launcher daemon built once, in a mount namespace of its
own (``launcher._make_template``): what each environment may write stays its own, the shared part is
read-only, and the host never sees a mount of it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import threading
import time

import pytest

from shoal.sandbox.cgroups import CgroupPool, CgroupUnavailable, _remove_instance
from shoal.sandbox.namespace import SLOT_BATCH_MAX, NamespaceBackend, StemKind, _discard_stem
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


def _daemon_mounts(backend: NamespaceBackend) -> dict[int, list[str]]:
    """Each launcher daemon's mounts, as 'mount point: type options'."""
    out = {}
    for process, _ in backend._daemons.values():
        with open(f"/proc/{process.pid}/mountinfo") as f:
            out[process.pid] = [f"{line.split()[4]}: {line.split(' - ')[1].strip()}" for line in f]
    return out


def _favordynmods_supported() -> str:
    """Why this kernel cannot take the option, or ''."""
    major, minor = (int(part) for part in re.match(r"(\d+)\.(\d+)", os.uname().release).groups())
    if (major, minor) < (6, 0):
        return f"cgroup favordynmods needs Linux 6.0+ (this is {os.uname().release})"
    with open("/proc/filesystems") as f:
        if not any(line.split()[-1] == "cgroup" for line in f):
            return "this kernel has no cgroup v1 filesystem"
    return ""


@pytest.mark.parametrize("favor", [True, False])
def test_daemons_favour_cgroup_migrations_in_their_own_namespace_as_the_server_starts_them(tmp_path, favor):
    if favor and _favordynmods_supported():
        pytest.skip(_favordynmods_supported())
    data = tmp_path / "data"
    before = _mounts()
    backend = NamespaceBackend(data, favor_dynmods=favor)
    try:
        backend.prepare(0)  # the exec daemon starts here ...
        (data / "environments" / "env-of-a-crashed-run").mkdir(parents=True)
        backend.cleanup_stale(data / "environments")  # ... and the server cleans what a crash left next
        assert sorted(p.name for p in (data / "environments").iterdir()) == [backend.scratch.name]
        assert (backend.scratch / "templates").is_dir()  # where the daemon mounts its workspace
        harness = Harness(tmp_path, backend)
        env = harness.environment(WRITER)  # a Python stem: the fork-server daemon starts too

        async def scenario():
            await env.start()
            out = await env.invoke(invocation({"mark": "m"}))
            assert not out.function_error, out.payload

        run(harness, scenario)
        workspace = str(backend.scratch / "templates")
        want = 2 if favor else 1  # the workspace, and the favouring hierarchy mounted next in it
        deadline = time.monotonic() + 10  # a daemon sets its namespace up as it starts (the exec one idles)
        while True:
            daemons = _daemon_mounts(backend)
            ready = all(sum(m.startswith(workspace) for m in ms) >= want for ms in daemons.values())
            if ready or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert len(daemons) == 2
        for pid, mounts in daemons.items():
            # the shared stem roots' workspace survived the clean-up that follows the first daemon's start
            assert any(m.startswith(f"{workspace}: tmpfs ") for m in mounts), (pid, mounts)
            favoured = [m for m in mounts if m.startswith(f"{workspace}/cgroup-dynmods: cgroup ")]
            if favor:
                assert len(favoured) == 1 and "favordynmods" in favoured[0].split()[-1], (pid, mounts)
            else:
                assert favoured == [], (pid, mounts)
        assert _mounts() == before  # only the daemons (and stems until they pivot) see any of it
    finally:
        backend.close()
    assert _mounts() == before


def _children() -> dict[int, str]:
    """This process's children (pid -> "zombie" or "alive": a live one's state letter, R or S, is timing)."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                out[int(entry)] = "zombie" if fields[0] == "Z" else "alive"
    return out


def test_a_stem_given_up_while_it_is_made_is_ended_and_reaped(namespace_backend):
    """PID 1 of a stem is the server's child from its ``clone`` on; a start cancelled while its stem is made
    (a client gone, the server stopping), here before a line of the stem's report was read, ends and reaps
    it and gives its slot back — never a zombie or a stray stem."""
    backend = namespace_backend
    backend.prepare(3)  # slots ready: taking one does not wait, the request goes out at once
    kind = StemKind(None, ())

    async def scenario():
        kept = [await backend._new_stem(kind)]  # the kind's shared root is built for the first one
        try:
            before = _children()
            free = len(backend.cgroups._free)
            making = asyncio.ensure_future(backend._new_stem(kind))
            await asyncio.sleep(0)  # it sends its request and waits for the report
            assert not making.done()
            making.cancel()
            with pytest.raises(asyncio.CancelledError):
                await making
            free_after = len(backend.cgroups._free)
            # the daemon serves requests in order: once the next stem is made, the abandoned one was cloned
            kept.append(await backend._new_stem(kind))
            after = _children()
            del after[kept[-1].pid]
            return before, free, after, free_after
        finally:
            for stem in kept:
                _discard_stem(stem, backend.cgroups, backend.uids)

    before, free_before, after, free_after = asyncio.run(scenario())
    assert after == before  # the cancelled stem neither lives on nor stays a zombie
    assert free_after == free_before  # its slot came back


def test_starts_waiting_for_cgroup_slots_share_batches(namespace_backend):
    """With no free slot, the starts waiting at the time share batches made in a worker thread: each gets
    its own slot, no more slots are made than were asked for, and a start cancelled while its batch is made
    leaves the slot it would have had in the pool."""
    backend = namespace_backend
    made_before = backend.cgroups._count

    async def scenario():
        slots = await asyncio.gather(*(backend.take_slot() for _ in range(20)))
        waiting = asyncio.ensure_future(backend.take_slot())
        await asyncio.sleep(0)  # it has started a batch of one in a worker thread
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await backend._slot_batch  # the batch the cancelled start began goes on to its end
        return slots

    slots = asyncio.run(scenario())
    assert len({slot.name for slot in slots}) == 20
    assert all(all(path.is_dir() for path in slot.paths.values()) for slot in slots)
    assert backend.cgroups._count - made_before == 21  # 20 taken, one left free by the cancelled start
    assert len(backend.cgroups._free) == 1
    for slot in slots:
        backend.cgroups.give_back(slot)


def test_a_batch_of_slots_on_its_way_when_the_pool_closes_leaves_no_cgroup(namespace_backend):
    """The server may stop while a worker thread makes a batch of slots: no slot is made once the pool is
    closed, and the one being made then is removed with the others — no cgroup directory outlives the pool.
    Closed at a different point of the batch each round."""
    for round_ in range(20):
        pool = CgroupPool(f"pid{os.getpid()}-closing-{round_}")

        def batch(pool: CgroupPool = pool) -> None:
            with contextlib.suppress(CgroupUnavailable):  # the close stopped it
                pool.prepare(SLOT_BATCH_MAX)

        worker = threading.Thread(target=batch)
        worker.start()
        deadline = time.monotonic() + 10
        while pool._count < 1 + round_ % 8 and time.monotonic() < deadline:  # the batch is under way
            pass
        pool.close()
        worker.join(10)
        left = [base for base in pool.bases.values() if base.exists()]
        for base in left:  # (what a failure left, removed all the same)
            _remove_instance(base)
        assert not worker.is_alive()
        assert not left, f"round {round_}: {left}"

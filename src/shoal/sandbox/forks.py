"""Adopting a copy forked from a snapshot's runtime as an environment of its own (namespace sandbox).

SnapStart-style scale-out: a version's snapshot is a runtime that has run INIT and its before-snapshot hooks
inside an ordinary environment (namespaces, cgroup, uid), and then forks a copy for every new environment.
A fork starts inside the snapshot's sandbox, as the snapshot's uid, so it must be moved into one of its own:

1. the copy connects to an abstract Unix socket named in its fork request (abstract sockets belong to the
   network namespace, which snapshots share with the host; the name is 128 random bits);
2. the server reads the copy's host pid and uid from the connection (``SO_PEERCRED``) and refuses any peer
   but the snapshot's uid; it sends the copy the write end of its own output pipe;
3. the copy unshares a user namespace with mount, IPC and UTS namespaces, mounts a private ``/tmp`` and
   ``/dev/shm`` there and says ``U``;
4. the server maps the environment's own uid and gid into that user namespace (and denies ``setgroups``),
   writes the environment's cgroup limits and moves the copy into that cgroup, and says ``M``;
5. the copy becomes that uid and gid and drops every capability, and waits: it may be made ahead of need;
6. when an environment needs it, the server sends its variables (JSON, up to end-of-file). Closing the
   connection without them lets the copy go.

From then on the copy is its own environment: its own uid (so its own Runtime API, whose peer check is by
uid), ``/tmp`` and cgroup, with the snapshot's memory shared copy-on-write. Its pid is not the server's child:
its exit is seen through a pidfd, its exit status is not known (reported as killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import struct
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shoal.sandbox.cgroups import Slot
    from shoal.sandbox.namespace import NamespaceBackend, NamespaceProcess

_CRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class ForkAdoption:
    """One copy's way in (see the module docstring)."""

    def __init__(self, backend: NamespaceBackend, max_procs: int) -> None:
        self.backend = backend
        self.max_procs = max_procs
        self.name = "shoal-fork-" + secrets.token_hex(16)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self._listener.bind("\0" + self.name)
        self._listener.listen(4)
        self._listener.setblocking(False)
        self._channel: socket.socket | None = None

    def close(self) -> None:
        self._listener.close()
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    async def deliver(self, variables: bytes) -> None:
        """The adopted copy's environment variables: it starts its runtime with them."""
        if self._channel is None:
            raise RuntimeError("no adopted copy waits for its variables")
        channel, self._channel = self._channel, None
        with channel:
            await asyncio.get_running_loop().sock_sendall(channel, variables)

    async def adopt(self, *, parent_uid: int, uid: int, memory_mb: int, work_dir: Path) -> NamespaceProcess:
        """Wait for the copy, move it into its own sandbox, and return it as the environment's process. On
        any failure (or cancellation) the copy is killed and ``uid`` given back."""
        from shoal.sandbox.namespace import NamespaceProcess

        loop = asyncio.get_running_loop()
        pid = 0
        slot: Slot | None = None
        out_r = -1
        try:
            try:
                conn, pid = await self._accept(loop, parent_uid)
            finally:
                self._listener.close()
            self._channel = conn  # kept open: the copy's variables come over it (deliver)
            out_r, out_w = os.pipe()
            try:
                socket.send_fds(conn, [b"O"], [out_w])
            finally:
                os.close(out_w)
            # its cgroup while it makes its namespaces
            slot = await self.backend.take_slot()
            joined = asyncio.ensure_future(asyncio.to_thread(slot.admit, pid, memory_mb, self.max_procs))
            try:
                said = await loop.sock_recv(conn, 1)
            finally:
                await joined
            if said != b"U":
                raise OSError("the forked copy could not make its own namespaces (see its log)")
            _map(pid, uid)
            await loop.sock_sendall(conn, b"M")
        except BaseException:
            self.close()
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if out_r >= 0:
                os.close(out_r)
            if slot is not None:
                await asyncio.to_thread(self.backend.cgroups.give_back, slot)
            self.backend.uids.give_back(uid)
            raise
        os.set_blocking(out_r, False)
        return NamespaceProcess(pid, out_r, work_dir, self.backend, slot, uid, memory_mb, None)

    async def _accept(self, loop: asyncio.AbstractEventLoop, parent_uid: int) -> tuple[socket.socket, int]:
        while True:
            conn, _ = await loop.sock_accept(self._listener)
            pid, peer_uid, _ = _CRED.unpack(
                conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size)
            )
            if peer_uid == parent_uid and pid > 0:
                conn.setblocking(False)
                return conn, pid
            conn.close()  # not a copy of this snapshot


def _map(pid: int, uid: int) -> None:
    """Privileged: the environment's uid and gid, and nothing else, in the copy's user namespace (three
    procfs writes, which do not block)."""
    for name, value in (
        ("setgroups", "deny"),
        ("uid_map", f"{uid} {uid} 1\n"),
        ("gid_map", f"{uid} {uid} 1\n"),
    ):
        fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)

"""The privileged launcher: set up one environment's isolated view, then exec its runtime.

Run by the namespace backend as ``python -I -S launcher.py <hex of marshal(spec)>``. ``marshal`` is built
in (``json`` would add ~19 ms to every cold start here) and both ends run the same interpreter. It imports
only the standard library and nothing from ``shoal``, does its set-up in its own short-lived process (never
on the server's event loop) and then ``exec``s, so it leaves nothing running. Exit status 125 means set-up
failed; the reason is on stderr, which the server captures as the environment's log output.

Spec keys: ``argv``, ``env``, ``binds`` (list of [host, inside, readonly]), ``tmp_mb``, ``cwd``.
"""

from __future__ import annotations

import ctypes
import marshal
import os
import sys

CLONE_NEWNS = 0x00020000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


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


def setup(spec: dict) -> None:  # type: ignore[type-arg]
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    for host, inside, readonly in spec["binds"]:
        _mount(host, inside, None, MS_BIND | MS_REC)
        if readonly:
            _mount(None, inside, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    # /tmp last: a bind source may live under the host's /tmp
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(spec['tmp_mb'])}m,mode=1777")
    os.chdir(spec["cwd"])


def main() -> int:
    if len(sys.argv) == 2 and sys.argv[1] == "--probe":
        _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m")
        return 0
    spec = marshal.loads(bytes.fromhex(sys.argv[1]))
    try:
        setup(spec)
    except OSError as exc:
        sys.stderr.write(f"shoal launcher: sandbox set-up failed: {exc}\n")
        return 125
    argv = spec["argv"]
    os.execve(argv[0], argv, spec["env"])
    return 125  # not reached


if __name__ == "__main__":
    sys.exit(main())

"""Deployment packages (ZIP): inspection, validation and safe extraction.

A package is hostile input (trust zone 1), but the node unpacks it, so every check here protects the node:

* nothing is ever written outside the destination — no absolute names, ``..`` components, backslash
  traversal, drive letters or NUL in entry names, no symbolic link that resolves outside the package, and no
  write *through* a symbolic link created by an earlier entry;
* the unzipped size is bounded twice: by the sizes the central directory declares (cheap, before anything is
  written) and by the bytes actually produced while extracting (declared sizes can lie);
* extraction happens in a private staging directory next to the destination, which is renamed into place
  atomically, so a concurrent reader sees either no tree or the whole tree, and a refused package leaves
  nothing behind.

Everything the package does wrong is an :class:`InvalidParameterValueException` with AWS's words. I/O failures
of the node itself (disk full, permissions) propagate unchanged: they are not the caller's fault.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import io
import lzma
import os
import re
import shutil
import stat
import struct
import tempfile
import zipfile
import zlib
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from shoal.core.errors import InvalidParameterValueException

MAX_UNZIPPED = 262_144_000  # spec §11: AccountLimit.CodeSizeUnzipped

UNZIP_FAILED = "Could not unzip uploaded file. Please check your file, then try to upload again."

PackageSource = bytes | str | os.PathLike[str]

_Kind = Literal["dir", "file", "link"]
_Parts = tuple[str, ...]

_CHUNK = 1 << 20
_MAX_COMPONENT_BYTES = 255  # NAME_MAX
_MAX_LINK_TARGET_BYTES = 4095  # PATH_MAX - 1
_MAX_SYMLINK_HOPS = 40  # the kernel's MAXSYMLINKS; more than this is refused, not assumed harmless
_SUPPORTED_COMPRESSION = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
_ENCRYPTED = 0x1
_DRIVE_LETTER = re.compile(r"[A-Za-z]:")

# What reading a damaged archive can raise from zipfile and the decompressors it drives.
_READ_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    lzma.LZMAError,
    struct.error,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    OSError,  # bz2 reports corrupt streams as OSError; only ever caught around reads, never writes
)


@dataclass(frozen=True)
class PackageInfo:
    sha256_hex: str
    sha256_b64: str  # AWS's CodeSha256: base64 of the raw SHA-256 digest of the zip bytes
    size: int  # zip bytes (CodeSize)
    unzipped_size: int  # sum of the sizes the archive declares for every entry
    file_count: int  # entries that are not directories (regular files and symbolic links)


@dataclass(frozen=True)
class _Entry:
    info: zipfile.ZipInfo
    shown: str  # the name as the archive has it, printable
    parts: _Parts  # normalised path components below the package root
    kind: _Kind
    executable: bool
    target: str | None = None  # symbolic-link target


@dataclass(frozen=True)
class _Plan:
    entries: list[_Entry]
    declared: int


# ---------------------------------------------------------------------------------------------- errors


def _unzip_failed(detail: str = "") -> InvalidParameterValueException:
    return InvalidParameterValueException(f"{UNZIP_FAILED} {detail}" if detail else UNZIP_FAILED)


def _entry_outside(shown: str) -> InvalidParameterValueException:
    return _unzip_failed(f"The entry '{shown}' points outside the package.")


def _link_outside(shown: str) -> InvalidParameterValueException:
    return _unzip_failed(f"The symbolic link '{shown}' points outside the package.")


def _conflict(shown: str) -> InvalidParameterValueException:
    return _unzip_failed(f"The entry '{shown}' conflicts with an entry of another type at the same path.")


def _too_big(limit: int) -> InvalidParameterValueException:
    return InvalidParameterValueException(f"Unzipped size must be smaller than {limit} bytes")


@contextlib.contextmanager
def _reading() -> Iterator[None]:
    """Map any failure to *read* the archive to AWS's "Could not unzip" refusal."""
    try:
        yield
    except _READ_ERRORS as exc:
        raise _unzip_failed() from exc


# ---------------------------------------------------------------------------------------------- public API


def inspect_package(data: bytes, *, max_unzipped: int = MAX_UNZIPPED) -> PackageInfo:
    """Validate a package without extracting it: structure, names, symbolic links and declared sizes.

    Cheap: reads the central directory and the (tiny) symbolic-link entries only. A package whose entries lie
    about their sizes passes here and is refused by :func:`extract_package`, which counts real bytes.
    """
    digest = hashlib.sha256(data).digest()
    with contextlib.ExitStack() as stack:
        plan = _plan(_open_zip(stack, data), max_unzipped)
    return PackageInfo(
        sha256_hex=digest.hex(),
        sha256_b64=base64.b64encode(digest).decode("ascii"),
        size=len(data),
        unzipped_size=plan.declared,
        file_count=sum(1 for e in plan.entries if e.kind != "dir"),
    )


def extract_package(
    data_or_path: PackageSource,
    dest: Path,
    *,
    max_unzipped: int = MAX_UNZIPPED,
    read_only: bool = False,
) -> int:
    """Extract a package (bytes, or the path of a zip file) to ``dest`` atomically; return the bytes written.

    The bytes written are file contents plus symbolic-link targets — for an honest package, equal to
    :attr:`PackageInfo.unzipped_size`. Regular files are 0o755 when the archive marks them executable and
    0o644 otherwise, directories 0o755 (setuid/setgid/sticky bits are never set); with ``read_only`` they are
    0o555 / 0o444 / 0o555 instead. Permissions are final before the tree becomes visible at ``dest``.

    If ``dest`` already exists when the finished tree is renamed into place (a concurrent extraction of the
    same package won), the staging tree is discarded and ``dest`` is left as it is. ``dest``'s parent is
    created if missing.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        zf = _open_zip(stack, data_or_path)
        plan = _plan(zf, max_unzipped)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".staging", dir=dest.parent))
        try:
            written = _write_tree(zf, plan, staging, max_unzipped)
            _seal_tree(staging, plan, read_only=read_only)
        except BaseException:
            remove_tree(staging)
            raise
    try:
        os.rename(staging, dest)
    except OSError as exc:
        remove_tree(staging)
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
    return written


def remove_tree(path: Path) -> None:
    """Remove a tree even when it was made read-only; a missing path is fine. Never follows links."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        path.unlink()
        return
    os.chmod(path, 0o700)
    for dirpath, dirnames, _ in os.walk(path):  # top-down, never into symbolic links
        for name in dirnames:
            sub = os.path.join(dirpath, name)
            if not os.path.islink(sub):
                os.chmod(sub, 0o700)
    shutil.rmtree(path)


# ---------------------------------------------------------------------------------------------- reading


def _open_zip(stack: contextlib.ExitStack, source: PackageSource) -> zipfile.ZipFile:
    fp: IO[bytes]
    if isinstance(source, bytes | bytearray | memoryview):
        fp = io.BytesIO(source)
    else:
        fp = stack.enter_context(open(source, "rb"))  # a missing file is the caller's bug: not mapped
    with _reading():
        return stack.enter_context(zipfile.ZipFile(fp))


def _shown(raw: str) -> str:
    return raw.replace("\x00", "\\x00")


def _split_name(raw: str, shown: str) -> tuple[_Parts, bool]:
    """Normalise an entry name to path components, refusing anything that could leave the package.

    Backslashes are treated as separators (as Info-ZIP ``unzip`` does with archives made on Windows).
    """
    if "\x00" in raw:
        raise _entry_outside(shown)
    name = raw.replace("\\", "/")
    if name.startswith("/") or _DRIVE_LETTER.match(name):
        raise _entry_outside(shown)
    parts: list[str] = []
    for component in name.split("/"):
        if component in ("", "."):
            continue
        if component == "..":
            raise _entry_outside(shown)
        if len(os.fsencode(component)) > _MAX_COMPONENT_BYTES:
            raise _unzip_failed(f"The entry '{shown}' has a name component longer than 255 bytes.")
        parts.append(component)
    return tuple(parts), name.endswith("/")


def _check_declared_size(infos: Sequence[zipfile.ZipInfo], max_unzipped: int) -> int:
    declared = sum(info.file_size for info in infos)
    if declared > max_unzipped:
        raise _too_big(max_unzipped)
    return declared


def _plan(zf: zipfile.ZipFile, max_unzipped: int) -> _Plan:
    """Validate every entry against the final state of the tree, before a single byte is written."""
    infos = zf.infolist()
    declared = _check_declared_size(infos, max_unzipped)

    entries: list[_Entry] = []
    state: dict[_Parts, _Kind] = {}
    for info in infos:
        raw = info.orig_filename
        shown = _shown(raw)
        if info.flag_bits & _ENCRYPTED or info.compress_type not in _SUPPORTED_COMPRESSION:
            raise _unzip_failed()
        parts, is_dir = _split_name(raw, shown)
        mode = info.external_attr >> 16
        kind: _Kind = "dir" if is_dir else "link" if stat.S_ISLNK(mode) else "file"
        if kind != "dir" and not parts:
            raise _entry_outside(shown)

        for i in range(1, len(parts)):  # every parent must be (or become) a real directory
            parent = state.setdefault(parts[:i], "dir")
            if parent == "link":  # writing through a symbolic link from an earlier entry
                raise _entry_outside(shown)
            if parent == "file":
                raise _conflict(shown)
        if parts:
            existing = state.get(parts)
            if kind == "dir" and existing == "link":
                raise _entry_outside(shown)
            if (kind == "dir") != (existing == "dir") and existing is not None:
                raise _conflict(shown)
            state[parts] = kind  # same-kind duplicates: the later entry wins, as with unzip

        target = _read_link_target(zf, info, shown) if kind == "link" else None
        entries.append(_Entry(info, shown, parts, kind, bool(mode & 0o111), target))

    links: dict[_Parts, str] = {}
    for e in entries:
        if e.kind == "link" and e.target is not None:
            links[e.parts] = e.target
        elif e.kind == "file":
            links.pop(e.parts, None)
    for e in entries:
        if e.target is not None and not _resolves_inside(e.parts[:-1], e.target, links):
            raise _link_outside(e.shown)
    return _Plan(entries, declared)


def _read_link_target(zf: zipfile.ZipFile, info: zipfile.ZipInfo, shown: str) -> str:
    if info.file_size > _MAX_LINK_TARGET_BYTES:
        raise _link_outside(shown)
    with _reading(), zf.open(info) as f:
        raw = f.read(_MAX_LINK_TARGET_BYTES + 1)
        while f.read(_CHUNK):  # reach the end so the CRC is checked
            pass
    if not raw or len(raw) > _MAX_LINK_TARGET_BYTES or b"\x00" in raw or b"\\" in raw or raw.startswith(b"/"):
        raise _link_outside(shown)
    return os.fsdecode(raw)


def _resolves_inside(start: _Parts, target: str, links: Mapping[_Parts, str]) -> bool:
    """Resolve ``target`` from directory ``start`` as the kernel would, following the package's own links.

    False if any step climbs above the package root (even if a later step comes back: at run time the root is
    a mount point, so "back" would be somewhere else), reaches an absolute target, or needs too many hops.
    """
    where = list(start)
    pending = deque(target.split("/"))
    hops = 0
    while pending:
        component = pending.popleft()
        if component in ("", "."):
            continue
        if component == "..":
            if not where:
                return False
            where.pop()
            continue
        link = links.get((*where, component))
        if link is None:
            where.append(component)
            continue
        hops += 1
        if hops > _MAX_SYMLINK_HOPS or link.startswith("/"):
            return False
        pending.extendleft(reversed(link.split("/")))  # relative to the directory holding the link: `where`
    return True


# ---------------------------------------------------------------------------------------------- writing


def _write_tree(zf: zipfile.ZipFile, plan: _Plan, root: Path, max_unzipped: int) -> int:
    written = 0
    made: set[_Parts] = {()}
    for e in plan.entries:
        try:
            _make_dirs(root, e.parts if e.kind == "dir" else e.parts[:-1], made, e.shown)
            if e.kind == "dir":
                continue
            path = root.joinpath(*e.parts)
            _remove_leaf(path, e.shown)
            if e.kind == "link":
                assert e.target is not None
                written += len(os.fsencode(e.target))
                if written > max_unzipped:
                    raise _too_big(max_unzipped)
                os.symlink(e.target, path)
            else:
                written = _write_file(zf, e, path, written, max_unzipped)
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise _unzip_failed(f"The entry '{e.shown}' has a path that is too long.") from exc
            raise
    return written


def _make_dirs(root: Path, parts: _Parts, made: set[_Parts], shown: str) -> None:
    for i in range(1, len(parts) + 1):
        prefix = parts[:i]
        if prefix in made:
            continue
        path = root.joinpath(*prefix)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(path).st_mode):  # a symbolic link or file: never go through it
                raise _entry_outside(shown) from None
        made.add(prefix)


def _remove_leaf(path: Path, shown: str) -> None:
    """Make room for a file or link: an earlier entry of the same name is replaced, never written through."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise _conflict(shown)
    os.unlink(path)


def _write_file(zf: zipfile.ZipFile, e: _Entry, path: Path, written: int, max_unzipped: int) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with contextlib.ExitStack() as stack:
        with _reading():
            src = stack.enter_context(zf.open(e.info))
        out = stack.enter_context(open(os.open(path, flags, 0o600), "wb", buffering=0))
        while True:
            with _reading():
                chunk = src.read(_CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > max_unzipped:  # real bytes: stop as soon as the limit is passed
                raise _too_big(max_unzipped)
            out.write(chunk)
    return written


def _seal_tree(root: Path, plan: _Plan, *, read_only: bool) -> None:
    """Give every regular file and directory its final mode; directories deepest first, the root last."""
    w = 0 if read_only else 0o200
    final: dict[_Parts, _Entry] = {e.parts: e for e in plan.entries}  # the later entry wins
    for parts, e in final.items():
        if e.kind == "file":  # a regular file this extraction created itself, never a link
            os.chmod(root.joinpath(*parts), (0o555 if e.executable else 0o444) | w)
    for parts in sorted(_directories(plan), key=len, reverse=True):
        os.chmod(root.joinpath(*parts), 0o555 | w)
    os.chmod(root, 0o555 | w)


def _directories(plan: _Plan) -> set[_Parts]:
    dirs: set[_Parts] = set()
    for e in plan.entries:
        upto = len(e.parts) if e.kind == "dir" else len(e.parts) - 1
        dirs.update(e.parts[:i] for i in range(1, upto + 1))
    return dirs

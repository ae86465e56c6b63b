"""Deployment packages (ZIP): inspection, validation and safe extraction.

A package is hostile input (trust zone 1), but the node unpacks it, so every check here protects the node:

* nothing is ever written outside the destination — no absolute names, ``..`` components, backslash
  traversal, drive letters or NUL in entry names, no symbolic link that resolves outside the package, and no
  write *through* a symbolic link created by an earlier entry;
* the unzipped size is bounded twice: by the sizes the central directory declares (cheap, before anything is
  written) and by the bytes actually produced while extracting (declared sizes can lie);
* extraction happens in a private staging directory next to the destination, which is renamed into place
  atomically, so a concurrent reader sees either no tree or the whole tree, and a refused package leaves
  nothing behind;
* the work is bounded whatever the archive holds: validation is linear in the length of the names, and the
  number of paths, the length of a path and the effort spent resolving symbolic links are capped.

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
import stat
import struct
import tempfile
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
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
_MAX_PATH_BYTES = 4095  # PATH_MAX - 1, for a whole entry name
_MAX_SYMLINK_HOPS = 40  # the kernel's MAXSYMLINKS; more than this is refused, not assumed harmless
_MAX_NODES = 1_000_000  # files, links and directories in one package (bounds inodes and planning memory)
_MAX_RESOLUTION_STEPS = 5_000_000  # path components walked to check all of a package's links
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
    kind: _Kind
    executable: bool
    target: str | None = None  # symbolic-link target


@dataclass(eq=False, slots=True)
class _Node:
    """One path of the final tree. A file or link node holds the entry that won that path."""

    kind: _Kind
    shown: str  # the entry that first needed this path, for messages
    entry: _Entry | None = None
    children: dict[str, _Node] = field(default_factory=dict)


@dataclass(frozen=True)
class _Plan:
    root: _Node
    declared: int
    file_count: int


# ---------------------------------------------------------------------------------------------- errors


def _unzip_failed(detail: str = "") -> InvalidParameterValueException:
    return InvalidParameterValueException(f"{UNZIP_FAILED} {detail}" if detail else UNZIP_FAILED)


def _entry_outside(shown: str) -> InvalidParameterValueException:
    return _unzip_failed(f"The entry '{shown}' points outside the package.")


def _link_outside(shown: str) -> InvalidParameterValueException:
    return _unzip_failed(f"The symbolic link '{shown}' points outside the package.")


def _conflict(shown: str) -> InvalidParameterValueException:
    return _unzip_failed(f"The entry '{shown}' conflicts with an entry of another type at the same path.")


def _path_too_long(shown: str) -> InvalidParameterValueException:
    return _unzip_failed(f"The entry '{shown}' has a path that is too long.")


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
        file_count=plan.file_count,
    )


def extract_package(
    data_or_path: PackageSource,
    dest: Path,
    *,
    max_unzipped: int = MAX_UNZIPPED,
    read_only: bool = False,
) -> int:
    """Extract a package (bytes, or the path of a zip file) to ``dest`` atomically; return the bytes written.

    Only the last entry of a repeated name is extracted (later wins, as with ``unzip``). The bytes written are
    file contents plus symbolic-link targets — for an honest package without repeated names, equal to
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
            written = _write_tree(zf, plan, staging, max_unzipped, read_only=read_only)
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


STALE_AFTER_S = 3600.0  # leftovers of a crashed writer older than this are removed at start-up


def remove_stale_leftovers(directory: Path, older_than_s: float = STALE_AFTER_S) -> None:
    """Remove temporary files and staging or trash trees a crashed writer left in ``directory``: dot-names
    only, and only those unchanged for ``older_than_s`` (a live writer's are younger)."""
    cutoff = time.time() - older_than_s
    with os.scandir(directory) as it:
        for entry in it:
            try:
                if entry.name.startswith(".") and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    remove_tree(Path(entry.path))
            except FileNotFoundError:
                pass


def remove_tree(path: Path) -> None:
    """Remove a tree even when it was made read-only; a missing path is fine.

    Never follows symbolic links, and iterative: extracted trees may be deeper than the recursion limit.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    pending, seen = [os.fspath(path)], []
    while pending:
        directory = pending.pop()
        os.chmod(directory, 0o700)  # a real directory: its parent listed it with follow_symlinks=False
        seen.append(directory)
        with os.scandir(directory) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                else:
                    os.unlink(entry.path)
    for directory in reversed(seen):  # every directory was seen after its parent
        os.rmdir(directory)


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
    if len(os.fsencode(name)) > _MAX_PATH_BYTES:
        raise _path_too_long(shown)
    parts: list[str] = []
    for component in name.split("/"):
        if component in ("", "."):
            continue
        if component == "..":
            raise _entry_outside(shown)
        if len(component) > _MAX_COMPONENT_BYTES // 4 and len(os.fsencode(component)) > _MAX_COMPONENT_BYTES:
            raise _unzip_failed(f"The entry '{shown}' has a name component longer than 255 bytes.")
        parts.append(component)
    return tuple(parts), name.endswith("/")


def _check_declared_size(infos: Sequence[zipfile.ZipInfo], max_unzipped: int) -> int:
    declared = sum(info.file_size for info in infos)
    if declared > max_unzipped:
        raise _too_big(max_unzipped)
    return declared


def _plan(zf: zipfile.ZipFile, max_unzipped: int) -> _Plan:
    """Validate every entry against the final state of the tree, before a single byte is written.

    The final state is a trie (linear in the total length of the names, whatever their depth): each path is a
    directory, a file or a link; a later file or link replaces an earlier file or link, a directory never
    changes kind, and nothing is ever placed below a file or a link.
    """
    infos = zf.infolist()
    declared = _check_declared_size(infos, max_unzipped)

    root = _Node("dir", "")
    nodes = 1
    files = 0
    links: list[tuple[_Entry, list[_Node]]] = []  # every link entry, with the directories holding it
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
        files += kind != "dir"

        node, chain = root, []
        for i, component in enumerate(parts):
            child = node.children.get(component)
            last = i == len(parts) - 1
            if child is None:
                child = node.children[component] = _Node(kind if last else "dir", shown)
                nodes += 1
                if nodes > _MAX_NODES:
                    raise _unzip_failed(f"The package has more than {_MAX_NODES} files and directories.")
            elif child.kind == "link" and (not last or kind == "dir"):
                raise _entry_outside(shown)  # would write through a link from an earlier entry
            elif (child.kind == "dir") != (kind == "dir" or not last):
                raise _conflict(shown)
            if not last:
                chain.append(child)
            node = child
        if parts:
            node.kind = kind  # same family: the later entry wins, as with unzip
        entry = _Entry(info, shown, kind, bool(mode & 0o111))
        if kind == "link":
            entry = _Entry(info, shown, kind, False, _read_link_target(zf, info, shown))
            links.append((entry, chain))
        if kind != "dir":
            node.entry = entry

    budget = [_MAX_RESOLUTION_STEPS]
    for entry, chain in links:
        assert entry.target is not None
        if not _resolves_inside(root, chain, entry.target, budget):
            raise _link_outside(entry.shown)
    return _Plan(root, declared, files)


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


def _resolves_inside(root: _Node, start: list[_Node], target: str, budget: list[int]) -> bool:
    """Resolve ``target`` from the directory ``start`` as the kernel would, following the package's links.

    False if any step climbs above the package root (even if a later step comes back: at run time the root is
    a mount point, so "back" would be somewhere else), reaches an absolute target or needs too many hops.
    ``budget`` bounds the total work over all links of a package (hostile chains of long targets).
    """
    where: list[_Node | None] = list(start)  # None: a name the package does not have
    pending = deque(target.split("/"))
    hops = 0
    while pending:
        budget[0] -= 1
        if budget[0] < 0:
            raise _unzip_failed("The package has too many or too deeply nested symbolic links.")
        component = pending.popleft()
        if component in ("", "."):
            continue
        if component == "..":
            if not where:
                return False
            where.pop()
            continue
        here = where[-1] if where else root
        child = here.children.get(component) if here is not None else None
        if child is None or child.kind != "link":
            where.append(child)
            continue
        hops += 1
        assert child.entry is not None and child.entry.target is not None
        if hops > _MAX_SYMLINK_HOPS:
            return False
        pending.extendleft(reversed(child.entry.target.split("/")))  # relative to the link's directory
    return True


# ---------------------------------------------------------------------------------------------- writing


def _write_tree(zf: zipfile.ZipFile, plan: _Plan, root: Path, max_unzipped: int, *, read_only: bool) -> int:
    """Create the final tree (only the winning entry of each path is extracted), then seal directory modes.

    Names are unique in the trie and the staging directory is private and fresh, so every file is created
    exclusively and nothing is ever placed below a link: there is no earlier link to write through.
    """
    w = 0 if read_only else 0o200
    written = 0
    dirs: list[str] = []
    stack: list[tuple[str, _Node]] = [(str(root), plan.root)]
    while stack:
        path, node = stack.pop()
        for name, child in node.children.items():
            sub = os.path.join(path, name)
            try:
                if child.kind == "dir":
                    os.mkdir(sub, 0o700)
                    dirs.append(sub)
                    stack.append((sub, child))
                    continue
                entry = child.entry
                assert entry is not None
                if entry.target is not None:
                    written += len(os.fsencode(entry.target))
                    if written > max_unzipped:
                        raise _too_big(max_unzipped)
                    os.symlink(entry.target, sub)
                else:
                    mode = (0o555 if entry.executable else 0o444) | w
                    written = _write_file(zf, entry.info, sub, mode, written, max_unzipped)
            except OSError as exc:
                if exc.errno == errno.ENAMETOOLONG:
                    raise _path_too_long(child.shown) from exc
                raise
    for sub in reversed(dirs):  # children were created after their parents: deepest first
        os.chmod(sub, 0o555 | w)
    os.chmod(root, 0o555 | w)
    return written


def _write_file(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, mode: int, written: int, limit: int
) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with contextlib.ExitStack() as stack:
        with _reading():
            src = stack.enter_context(zf.open(info))
        out = stack.enter_context(open(os.open(path, flags, 0o600), "wb"))
        while True:
            with _reading():
                chunk = src.read(_CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > limit:  # real bytes: stop as soon as the limit is passed
                raise _too_big(limit)
            out.write(chunk)
        out.flush()
        os.fchmod(out.fileno(), mode)  # final mode, whatever the umask; works even when read-only
    return written

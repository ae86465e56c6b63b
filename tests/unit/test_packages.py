"""ZIP inspection and safe extraction: every refusal, with AWS's exact words, and nothing left behind."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import struct
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from shoal.core.errors import InvalidParameterValueException
from shoal.store import packages
from shoal.store.packages import MAX_UNZIPPED, PackageInfo, extract_package, inspect_package

UNZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."

# ---------------------------------------------------------------------------------------------- helpers

Item = tuple[str, bytes] | tuple[str, bytes, int] | tuple[zipfile.ZipInfo, bytes]


def make_zip(*items: Item, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of ``(name, data[, unix mode])`` or ``(ZipInfo, data)`` items, duplicates allowed."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name"
        with zipfile.ZipFile(buf, "w", compression) as zf:
            for item in items:
                if isinstance(item[0], zipfile.ZipInfo):
                    info = item[0]
                else:
                    info = zipfile.ZipInfo(item[0])
                    info.compress_type = compression
                    mode = item[2] if len(item) == 3 else (0o40755 if item[0].endswith("/") else 0o100644)
                    info.external_attr = mode << 16
                zf.writestr(info, item[1])
    return buf.getvalue()


def link(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def patch_entry(
    data: bytes,
    name: bytes,
    *,
    new_name: bytes | None = None,
    file_size: int | None = None,
    flags_or: int = 0,
    method: int | None = None,
) -> bytes:
    """Hand-edit one entry's local header and central-directory record (the fields zipfile trusts)."""
    out = bytearray(data)
    # (signature, offset of flags, method, uncompressed size, name length, name)
    layouts = ((b"PK\x03\x04", 6, 8, 22, 26, 30), (b"PK\x01\x02", 8, 10, 24, 28, 46))
    for sig, o_flags, o_method, o_size, o_nlen, o_name in layouts:
        found = False
        at = out.find(sig)
        while at >= 0:
            (nlen,) = struct.unpack_from("<H", out, at + o_nlen)
            if bytes(out[at + o_name : at + o_name + nlen]) == name:
                found = True
                (flags,) = struct.unpack_from("<H", out, at + o_flags)
                struct.pack_into("<H", out, at + o_flags, flags | flags_or)
                if method is not None:
                    struct.pack_into("<H", out, at + o_method, method)
                if file_size is not None:
                    struct.pack_into("<I", out, at + o_size, file_size)
                if new_name is not None:
                    assert len(new_name) == nlen
                    out[at + o_name : at + o_name + nlen] = new_name
            at = out.find(sig, at + 4)
        assert found, (sig, name)
    return bytes(out)


def everything_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def refused(data: bytes, tmp_path: Path, message: str, max_unzipped: int = MAX_UNZIPPED) -> None:
    """Both entry points refuse with exactly ``message`` and nothing at all is written."""
    with pytest.raises(InvalidParameterValueException) as exc:
        inspect_package(data, max_unzipped=max_unzipped)
    assert exc.value.message == message
    assert exc.value.status == 400
    assert_extract_refused(data, tmp_path, message, max_unzipped)


def assert_extract_refused(
    data: bytes, tmp_path: Path, message: str, max_unzipped: int = MAX_UNZIPPED
) -> None:
    parent = tmp_path / "code"
    parent.mkdir()
    with pytest.raises(InvalidParameterValueException) as exc:
        extract_package(data, parent / "pkg", max_unzipped=max_unzipped)
    assert exc.value.message == message
    assert everything_under(tmp_path) == {"code"}, "nothing written outside, no staging left"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture(scope="module")
def zeros_bomb() -> bytes:
    """300 MB of zeros, deflated to ~300 KB, with honest sizes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("zeros.bin")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as f:
            chunk = bytes(1 << 20)
            for _ in range(300):
                f.write(chunk)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- inspect


def test_inspect_reports_hashes_and_sizes() -> None:
    data = make_zip(("index.py", b"def handler(e, c):\n    return 1\n"), ("lib/", b""), ("lib/x.txt", b"abc"))
    info = inspect_package(data)
    digest = hashlib.sha256(data).digest()
    assert info == PackageInfo(
        sha256_hex=digest.hex(),
        sha256_b64=base64.b64encode(digest).decode(),
        size=len(data),
        unzipped_size=32 + 3,
        file_count=2,
    )


def test_empty_zip_is_a_package(tmp_path: Path) -> None:
    data = make_zip()
    assert inspect_package(data).file_count == 0
    assert extract_package(data, tmp_path / "pkg") == 0
    assert everything_under(tmp_path) == {"pkg"}


# ---------------------------------------------------------------------------------------------- not a zip


@pytest.mark.parametrize(
    "data",
    [b"", b"hello world", b"PK\x03\x04" + bytes(40), make_zip(("a.txt", b"x" * 1000))[:-30]],
    ids=["empty", "text", "header-only", "truncated"],
)
def test_not_a_zip(data: bytes, tmp_path: Path) -> None:
    refused(data, tmp_path, UNZIP)


def test_corrupt_data_is_refused_at_extraction(tmp_path: Path) -> None:
    data = bytearray(make_zip(("a.txt", b"hello " * 1000), ("b.txt", b"second")))
    body = data.index(b"a.txt") + len(b"a.txt") + 10  # inside the deflated data of a.txt
    data[body : body + 8] = b"\xff" * 8
    assert_extract_refused(bytes(data), tmp_path, UNZIP)


def test_bad_crc_is_refused(tmp_path: Path) -> None:
    data = bytearray(make_zip(("a.txt", b"hello"), compression=zipfile.ZIP_STORED))
    at = data.index(b"hello")
    data[at : at + 5] = b"jello"
    assert_extract_refused(bytes(data), tmp_path, UNZIP)


def test_encrypted_entry(tmp_path: Path) -> None:
    data = patch_entry(make_zip(("secret.txt", b"xyz")), b"secret.txt", flags_or=0x1)
    refused(data, tmp_path, UNZIP)


def test_unsupported_compression(tmp_path: Path) -> None:
    data = patch_entry(make_zip(("a.txt", b"xyz")), b"a.txt", method=99)
    refused(data, tmp_path, UNZIP)


# ---------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    [
        "../evil",
        "a/../../evil",
        "ok/../../../evil",
        "..\\evil",
        "a\\..\\..\\evil",
        "C:\\evil",
        "c:/evil",
        "\\evil",
        "/evil",
    ],
)
def test_entry_outside_the_package(name: str, tmp_path: Path) -> None:
    data = make_zip(("index.py", b"ok"), (name, b"pwned"))
    refused(data, tmp_path, f"{UNZIP} The entry '{name}' points outside the package.")


def test_absolute_entry_into_a_real_directory(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    name = f"{target}/pwned"
    data = make_zip((name, b"pwned"))
    refused(data, tmp_path, f"{UNZIP} The entry '{name}' points outside the package.")
    assert not target.exists()


def test_nul_in_entry_name(tmp_path: Path) -> None:
    data = patch_entry(make_zip(("evil@x", b"pwned")), b"evil@x", new_name=b"evil\x00x")
    refused(data, tmp_path, f"{UNZIP} The entry 'evil\\x00x' points outside the package.")


def test_overlong_name_component(tmp_path: Path) -> None:
    name = "d/" + "n" * 256
    refused(
        make_zip((name, b"x")),
        tmp_path,
        f"{UNZIP} The entry '{name}' has a name component longer than 255 bytes.",
    )


def test_overlong_entry_name(tmp_path: Path) -> None:
    name = "d/" * 2047 + "ff"
    refused(make_zip((name, b"x")), tmp_path, f"{UNZIP} The entry '{name}' has a path that is too long.")


def test_path_too_long_for_the_destination(tmp_path: Path) -> None:
    name = "/".join(["n" * 250] * 16)  # 4015 bytes: a valid name, but not below any real directory
    data = make_zip((name, b"x"))
    inspect_package(data)
    assert_extract_refused(data, tmp_path, f"{UNZIP} The entry '{name}' has a path that is too long.")


def test_deep_trees_are_fine(tmp_path: Path) -> None:
    name = "d/" * 1500 + "leaf"
    pkg = tmp_path / "pkg"
    try:
        extract_package(make_zip((name, b"deep"), ("d/top", b"top")), pkg, read_only=True)
        assert (pkg / name).read_bytes() == b"deep"
        assert mode_of(pkg / ("d/" * 1500)) == 0o555
    finally:
        packages.remove_tree(pkg)  # pytest's own clean-up is recursive: leave no deep tree behind
    assert not pkg.exists()


def test_too_many_files_and_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packages, "_MAX_NODES", 5)
    inspect_package(make_zip(("a/b/c", b""), ("a/d", b"")))  # root + 4
    data = make_zip(("a/b/c", b""), ("a/d", b""), ("e", b""))
    refused(data, tmp_path, f"{UNZIP} The package has more than 5 files and directories.")


def test_dot_components_and_windows_separators_are_normalised(tmp_path: Path) -> None:
    data = make_zip(("./a/./b.txt", b"1"), ("win\\dir\\c.txt", b"2"), ("x//y.txt", b"3"))
    extract_package(data, tmp_path / "pkg")
    pkg = tmp_path / "pkg"
    assert (pkg / "a" / "b.txt").read_bytes() == b"1"
    assert (pkg / "win" / "dir" / "c.txt").read_bytes() == b"2"
    assert (pkg / "x" / "y.txt").read_bytes() == b"3"


# ---------------------------------------------------------------------------------------------- symlinks


@pytest.mark.parametrize(
    ("links", "bad"),
    [
        ([("l", "/etc/passwd")], "l"),
        ([("l", "..")], "l"),
        ([("sub/l", "../../etc")], "sub/l"),
        ([("sub/l", "x/../../..")], "sub/l"),
        ([("l", "a\\..\\..\\etc")], "l"),
        ([("l", "")], "l"),
        ([("l", "a\x00b")], "l"),
        # each link alone looks fine lexically; together `sub/x` climbs above the root
        ([("sub/up", ".."), ("sub/x", "up/../elsewhere")], "sub/x"),
        # leaves the root and comes back in: at run time the root is a mount point, "back" is elsewhere
        ([("l", "../code/pkg/index.py")], "l"),
        # an allowed link used as a stepping stone to an absolute one
        ([("abs", "/tmp"), ("l", "abs")], "abs"),
    ],
    ids=["absolute", "dotdot", "deep-dotdot", "nested-dotdot", "backslash", "empty", "nul", "chain",
         "out-and-back", "via-absolute"],
)  # fmt: skip
def test_symlink_outside_the_package(links: list[tuple[str, str]], bad: str, tmp_path: Path) -> None:
    data = make_zip(("index.py", b"ok"), *(link(n, t) for n, t in links))
    refused(data, tmp_path, f"{UNZIP} The symbolic link '{bad}' points outside the package.")


def test_symlink_loop_is_refused(tmp_path: Path) -> None:
    data = make_zip(link("a", "b"), link("b", "a"))
    refused(data, tmp_path, f"{UNZIP} The symbolic link 'a' points outside the package.")


def test_link_checking_work_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many links through a chain of long targets: refused once the total resolution work is spent."""
    hub = [link("h0", "./" * 100 + "real")] + [link(f"h{i}", "./" * 100 + f"h{i - 1}") for i in range(1, 20)]
    many = [link(f"l{i}", "h19") for i in range(50)]
    data = make_zip(("real", b"x"), *hub, *many)
    inspect_package(data)  # fine under the real budget
    monkeypatch.setattr(packages, "_MAX_RESOLUTION_STEPS", 20_000)
    refused(data, tmp_path, f"{UNZIP} The package has too many or too deeply nested symbolic links.")


def test_symlinks_inside_are_created_as_links(tmp_path: Path) -> None:
    data = make_zip(
        ("real/file.txt", b"content"),
        link("flat", "real/file.txt"),
        link("dirlink", "real"),
        link("real/up", ".."),  # the package root: inside
        link("real/self", "./file.txt"),
        link("via", "dirlink/file.txt"),  # through another link
        link("dangling", "not/there"),  # inside, merely missing
    )
    pkg = tmp_path / "pkg"
    written = extract_package(data, pkg)
    assert written == inspect_package(data).unzipped_size
    assert os.readlink(pkg / "flat") == "real/file.txt"
    assert (pkg / "flat").read_bytes() == b"content"
    assert (pkg / "dirlink").is_symlink() and (pkg / "dirlink" / "file.txt").read_bytes() == b"content"
    assert (pkg / "real" / "up" / "flat").read_bytes() == b"content"
    assert (pkg / "via").read_bytes() == b"content"
    assert (pkg / "dangling").is_symlink() and not (pkg / "dangling").exists()


# ---------------------------------------------------------------------------------------------- write-through


def test_symlink_then_write_through_to_outside(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    data = make_zip(link("a", str(victim)), ("a/x", b"pwned"))
    victim.mkdir()
    with pytest.raises(InvalidParameterValueException) as exc:
        extract_package(data, tmp_path / "code" / "pkg")
    assert exc.value.message.startswith(UNZIP)
    assert list(victim.iterdir()) == []
    assert everything_under(tmp_path) == {"code", "victim"}


@pytest.mark.parametrize("second", ["a/x", "a/", "a/deeper/x"])
def test_never_writes_through_a_link_even_to_inside(second: str, tmp_path: Path) -> None:
    data = make_zip(("b/", b""), link("a", "b"), (second, b"" if second.endswith("/") else b"through"))
    refused(data, tmp_path, f"{UNZIP} The entry '{second}' points outside the package.")


# ---------------------------------------------------------------------------------------------- duplicates


def test_duplicate_names_later_wins(tmp_path: Path) -> None:
    data = make_zip(
        ("a.txt", b"first"), ("a.txt", b"second"), ("run", b"x", 0o100644), ("run", b"y", 0o100755)
    )
    pkg = tmp_path / "pkg"
    extract_package(data, pkg)
    assert (pkg / "a.txt").read_bytes() == b"second"
    assert (pkg / "run").read_bytes() == b"y"
    assert mode_of(pkg / "run") == 0o755


def test_duplicate_file_replaces_a_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    data = make_zip(("b", b"original"), link("a", "b"), ("a", b"replacement"))
    pkg = tmp_path / "pkg"
    extract_package(data, pkg)
    assert not (pkg / "a").is_symlink()
    assert (pkg / "a").read_bytes() == b"replacement"
    assert (pkg / "b").read_bytes() == b"original"


def test_duplicate_link_replaces_a_file(tmp_path: Path) -> None:
    data = make_zip(("b", b"target"), ("a", b"file"), link("a", "b"))
    pkg = tmp_path / "pkg"
    extract_package(data, pkg)
    assert os.readlink(pkg / "a") == "b"


def test_replaced_link_is_still_checked(tmp_path: Path) -> None:
    data = make_zip(link("a", "/etc/passwd"), ("a", b"file"))
    refused(data, tmp_path, f"{UNZIP} The symbolic link 'a' points outside the package.")


@pytest.mark.parametrize(
    ("items", "bad"),
    [
        ((("a", b"file"), ("a/x", b"under a file")), "a/x"),
        ((("a/x", b"in a dir"), ("a", b"file over a dir")), "a"),
        ((("a/", b""), ("a", b"file over a dir")), "a"),
        ((("a", b"file"), ("a/", b"")), "a/"),
    ],
)
def test_file_and_directory_conflicts(items: tuple[Item, ...], bad: str, tmp_path: Path) -> None:
    message = f"{UNZIP} The entry '{bad}' conflicts with an entry of another type at the same path."
    refused(make_zip(*items), tmp_path, message)


# ---------------------------------------------------------------------------------------------- sizes


def test_declared_size_over_the_limit(tmp_path: Path) -> None:
    data = make_zip(("a", b"x" * 600), ("b", b"y" * 500))
    refused(data, tmp_path, "Unzipped size must be smaller than 1000 bytes", max_unzipped=1000)
    assert inspect_package(data, max_unzipped=1100).unzipped_size == 1100


def test_declared_size_over_the_default_limit(tmp_path: Path) -> None:
    data = patch_entry(make_zip(("a", b"x")), b"a", file_size=MAX_UNZIPPED + 1)
    refused(data, tmp_path, "Unzipped size must be smaller than 262144000 bytes")


def test_zip_bomb_is_refused_without_inflating(zeros_bomb: bytes, tmp_path: Path) -> None:
    assert len(zeros_bomb) < 1_000_000
    refused(zeros_bomb, tmp_path, "Unzipped size must be smaller than 262144000 bytes")


def test_zip_bomb_under_a_lower_limit(zeros_bomb: bytes, tmp_path: Path) -> None:
    refused(
        zeros_bomb, tmp_path, "Unzipped size must be smaller than 10000000 bytes", max_unzipped=10_000_000
    )


def test_real_bytes_are_counted_when_declared_sizes_are_not_trusted(
    zeros_bomb: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: with the declared-size check disabled, the byte count stops the bomb."""
    monkeypatch.setattr(packages, "_check_declared_size", lambda infos, limit: 0)
    written: list[int] = []

    class CountingFile(io.FileIO):
        def write(self, b: Any) -> int:
            n = super().write(b)
            written.append(n or 0)
            return n or 0

    monkeypatch.setattr(packages, "open", lambda fd, mode: CountingFile(fd, mode), raising=False)
    limit = 10_000_000
    assert_extract_refused(
        zeros_bomb, tmp_path, "Unzipped size must be smaller than 10000000 bytes", max_unzipped=limit
    )
    assert sum(written) <= 10_000_000


def test_forged_file_size_bomb(tmp_path: Path) -> None:
    """The headers claim 1000 bytes for 50 MB of zeros: inspection believes them, extraction never writes more
    than was declared (zipfile stops there) and refuses the entry when its CRC does not match."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = b"".join(co.compress(bytes(1 << 20)) for _ in range(50)) + co.flush()
    bomb = _zip_with_forged_size(body, declared=1000, crc=zlib.crc32(bytes(50 << 20)))
    assert len(bomb) < 100_000
    assert inspect_package(bomb, max_unzipped=1_000_000).unzipped_size == 1000
    assert_extract_refused(bomb, tmp_path, UNZIP, max_unzipped=1_000_000)


def _zip_with_forged_size(deflated: bytes, *, declared: int, crc: int) -> bytes:
    """A one-entry zip whose headers declare ``declared`` bytes for the given deflate stream."""
    name = b"small.bin"
    local = struct.pack(
        "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(deflated), declared, len(name), 0
    )
    central = struct.pack(
        "<4sHHHHHHIIIHHHHHII",
        b"PK\x01\x02", 0x031E, 20, 0, 8, 0, 0x21, crc, len(deflated), declared, len(name), 0, 0, 0, 0,
        0o100644 << 16, 0,
    )  # fmt: skip
    cd_offset = len(local) + len(name) + len(deflated)
    cd = central + name
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(cd), cd_offset, 0)
    return local + name + deflated + cd + end


def test_highly_compressible_file_under_the_limit_is_fine(tmp_path: Path) -> None:
    data = make_zip(("zeros", bytes(5_000_000)))
    assert len(data) < 10_000
    assert extract_package(data, tmp_path / "pkg", max_unzipped=5_000_000) == 5_000_000
    assert (tmp_path / "pkg" / "zeros").stat().st_size == 5_000_000


# ---------------------------------------------------------------------------------------------- modes


def test_modes_and_executable_bit(tmp_path: Path) -> None:
    data = make_zip(
        ("bootstrap", b"#!/bin/sh\n", 0o100755),
        ("only-user-x", b"", 0o100700),
        ("private", b"secret", 0o100600),
        ("setuid", b"", 0o104755),
        ("sticky", b"", 0o101644),
        ("dir/", b"", 0o40700),
        ("implicit/file", b"", 0o100644),
        ("windows.txt", b"", 0),
    )
    pkg = tmp_path / "pkg"
    extract_package(data, pkg)
    assert mode_of(pkg) == 0o755
    assert mode_of(pkg / "bootstrap") == 0o755
    assert os.access(pkg / "bootstrap", os.X_OK)
    assert mode_of(pkg / "only-user-x") == 0o755
    assert mode_of(pkg / "private") == 0o644
    assert mode_of(pkg / "setuid") == 0o755
    assert mode_of(pkg / "sticky") == 0o644
    assert mode_of(pkg / "dir") == 0o755
    assert mode_of(pkg / "implicit") == 0o755
    assert mode_of(pkg / "windows.txt") == 0o644


def test_read_only_modes(tmp_path: Path) -> None:
    data = make_zip(("bootstrap", b"", 0o100755), ("a/b/c.txt", b"x"), ("empty/", b""), link("l", "a"))
    pkg = tmp_path / "pkg"
    extract_package(data, pkg, read_only=True)
    assert mode_of(pkg) == 0o555
    assert mode_of(pkg / "bootstrap") == 0o555
    assert mode_of(pkg / "a" / "b" / "c.txt") == 0o444
    assert {mode_of(pkg / d) for d in ("a", "a/b", "empty")} == {0o555}
    packages.remove_tree(pkg)
    assert not pkg.exists()


def test_directory_entries(tmp_path: Path) -> None:
    data = make_zip(("d/", b""), ("d/e/f/", b""), ("d/file", b"1"))
    pkg = tmp_path / "pkg"
    extract_package(data, pkg)
    assert (pkg / "d" / "e" / "f").is_dir()
    assert list((pkg / "d" / "e" / "f").iterdir()) == []
    assert (pkg / "d" / "file").read_bytes() == b"1"


# ---------------------------------------------------------------------------------------------- placement


def test_extract_from_a_path_returns_bytes_written(tmp_path: Path) -> None:
    data = make_zip(("a", b"12345"), ("b/c", b"678"), link("l", "a"))
    src = tmp_path / "p.zip"
    src.write_bytes(data)
    dest = tmp_path / "deep" / "er" / "pkg"
    assert extract_package(src, dest) == 5 + 3 + 1 == inspect_package(data).unzipped_size
    assert everything_under(tmp_path / "deep") == {
        "er",
        "er/pkg",
        "er/pkg/a",
        "er/pkg/b",
        "er/pkg/b/c",
        "er/pkg/l",
    }


def test_existing_destination_wins(tmp_path: Path) -> None:
    dest = tmp_path / "pkg"
    dest.mkdir()
    (dest / "marker").write_text("first")
    extract_package(make_zip(("a", b"x")), dest)
    assert everything_under(tmp_path) == {"pkg", "pkg/marker"}


def test_remove_tree_tolerates_missing_and_keeps_link_targets(tmp_path: Path) -> None:
    packages.remove_tree(tmp_path / "missing")
    keep = tmp_path / "keep"
    keep.mkdir(mode=0o700)
    (keep / "f").write_text("x")
    pkg = tmp_path / "pkg"
    extract_package(make_zip(("a", b"x")), pkg, read_only=True)
    os.chmod(pkg, 0o755)
    os.symlink(keep, pkg / "outside")
    os.chmod(pkg, 0o555)
    packages.remove_tree(pkg)
    assert not pkg.exists()
    assert (keep / "f").read_text() == "x"
    assert mode_of(keep) == 0o700

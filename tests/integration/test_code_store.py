"""FileCodeStore on a real directory: content addressing, idempotence, extraction on first use, deletion."""

from __future__ import annotations

import codecs
import hashlib
import io
import multiprocessing
import os
import stat
import subprocess
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.core.errors import InvalidParameterValueException
from shoal.store.code import FileCodeStore
from shoal.store.packages import remove_tree

NOBODY = 65534


def make_zip(*items: tuple[str, bytes, int]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in items:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


PACKAGE = make_zip(
    ("bootstrap", b"#!/bin/sh\necho hello\n", 0o100755),
    ("index.py", b"def handler(event, context):\n    return event\n", 0o100644),
    ("lib/", b"", 0o40755),
    ("lib/data.txt", b"x" * 10_000, 0o100600),
)
SHA = hashlib.sha256(PACKAGE).hexdigest()


def leftovers(store: FileCodeStore) -> list[str]:
    return sorted(
        p.name for d in ("zips", "tree") for p in (store.root / d).iterdir() if p.name.startswith(".")
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FileCodeStore]:
    s = FileCodeStore(tmp_path / "code")
    yield s
    assert leftovers(s) == []
    remove_tree(s.root)  # the trees are read-only: leave nothing pytest cannot clean


def test_put_stores_the_zip_by_sha(store: FileCodeStore) -> None:
    info = store.put(PACKAGE)
    assert info.sha256_hex == SHA
    assert info.size == len(PACKAGE)
    assert info.file_count == 3
    assert store.has(SHA)
    assert store.zip_path(SHA) == store.root / "zips" / f"{SHA}.zip"
    assert store.read(SHA) == PACKAGE
    assert store.total_size() == len(PACKAGE)


def test_put_is_idempotent(store: FileCodeStore) -> None:
    first = store.put(PACKAGE)
    before = os.stat(store.zip_path(SHA))
    assert store.put(PACKAGE) == first
    after = os.stat(store.zip_path(SHA))
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    assert [p.name for p in (store.root / "zips").iterdir()] == [f"{SHA}.zip"]


def test_put_refuses_invalid_packages_and_stores_nothing(store: FileCodeStore) -> None:
    with pytest.raises(InvalidParameterValueException):
        store.put(b"not a zip")
    with pytest.raises(InvalidParameterValueException):
        store.put(make_zip(("../escape", b"x", 0o100644)))
    small = FileCodeStore(store.root, max_unzipped=100)
    with pytest.raises(InvalidParameterValueException, match="smaller than 100 bytes"):
        small.put(PACKAGE)
    assert list((store.root / "zips").iterdir()) == []
    assert store.total_size() == 0


def test_missing_code(store: FileCodeStore) -> None:
    assert not store.has(SHA)
    with pytest.raises(KeyError):
        store.zip_path(SHA)
    with pytest.raises(KeyError):
        store.read(SHA)
    with pytest.raises(KeyError):
        store.task_root(SHA)
    assert not (store.root / "tree" / SHA).exists()
    store.delete(SHA)  # nothing to delete is fine


@pytest.mark.parametrize(
    "bad",
    ["", "../../etc/passwd", SHA.upper(), SHA[:-1], SHA + "0", SHA + "\n", f"{SHA[:-2]}/x", "g" * 64],
)
def test_every_sha_argument_is_validated(store: FileCodeStore, bad: str) -> None:
    for call in (store.has, store.zip_path, store.read, store.task_root, store.delete):
        with pytest.raises(ValueError, match="not a SHA-256"):
            call(bad)


def test_task_root_extracts_read_only_on_first_use(store: FileCodeStore) -> None:
    store.put(PACKAGE)
    root = store.task_root(SHA)
    assert root == store.root / "tree" / SHA
    assert (root / "index.py").read_bytes().startswith(b"def handler")
    assert stat.S_IMODE(root.stat().st_mode) == 0o555
    assert stat.S_IMODE((root / "lib").stat().st_mode) == 0o555
    assert stat.S_IMODE((root / "bootstrap").stat().st_mode) == 0o555
    assert stat.S_IMODE((root / "index.py").stat().st_mode) == 0o444
    assert stat.S_IMODE((root / "lib" / "data.txt").stat().st_mode) == 0o444
    inode = root.stat().st_ino
    assert store.task_root(SHA) == root
    assert root.stat().st_ino == inode, "second use does not extract again"


def test_bootstrap_runs(store: FileCodeStore) -> None:
    store.put(PACKAGE)
    out = subprocess.run([store.task_root(SHA) / "bootstrap"], capture_output=True, check=True)
    assert out.stdout == b"hello\n"


def test_task_root_rebuilds_a_missing_tree(store: FileCodeStore) -> None:
    store.put(PACKAGE)
    remove_tree(store.task_root(SHA))
    assert (store.task_root(SHA) / "index.py").is_file()


def test_task_root_refuses_a_package_that_only_fails_when_extracted(store: FileCodeStore) -> None:
    data = bytearray(make_zip(("a.txt", b"hello " * 1000, 0o100644)))
    at = data.index(b"a.txt") + len(b"a.txt") + 10  # inside the deflated data: the directory still reads fine
    data[at : at + 8] = b"\xff" * 8
    sha = store.put(bytes(data)).sha256_hex
    with pytest.raises(InvalidParameterValueException, match=r"^Could not unzip uploaded file"):
        store.task_root(sha)
    assert list((store.root / "tree").iterdir()) == []
    store.delete(sha)


def test_concurrent_task_root_from_threads(store: FileCodeStore) -> None:
    store.put(PACKAGE)
    barrier = threading.Barrier(8)
    results: list[Path] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            root = store.task_root(SHA)
            assert (root / "lib" / "data.txt").read_bytes() == b"x" * 10_000
            results.append(root)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [store.root / "tree" / SHA] * 8
    assert sorted(p.name for p in (store.root / "tree").iterdir()) == [SHA]


def _extract_in_child(root: str, start_at: float) -> str:
    time.sleep(max(0.0, start_at - time.time()))
    return str(FileCodeStore(Path(root)).task_root(SHA))


def test_concurrent_task_root_from_processes(store: FileCodeStore) -> None:
    """Separate processes share no lock: the atomic rename decides, the losers clean up after themselves."""
    store.put(PACKAGE)
    start_at = time.time() + 0.5
    with multiprocessing.get_context("fork").Pool(4) as pool:
        roots = pool.starmap(_extract_in_child, [(str(store.root), start_at)] * 4)
    assert set(roots) == {str(store.root / "tree" / SHA)}
    assert sorted(p.name for p in (store.root / "tree").iterdir()) == [SHA]
    assert (store.root / "tree" / SHA / "index.py").is_file()


def test_delete_removes_zip_and_read_only_tree(store: FileCodeStore) -> None:
    other = make_zip(("other.py", b"pass\n", 0o100644))
    other_sha = store.put(other).sha256_hex
    store.put(PACKAGE)
    store.task_root(SHA)
    assert store.total_size() == len(PACKAGE) + len(other)
    store.delete(SHA)
    assert not store.has(SHA)
    assert not (store.root / "tree" / SHA).exists()
    assert store.total_size() == len(other)
    assert store.has(other_sha)
    store.delete(SHA)  # twice is fine
    store.put(PACKAGE)  # and it can come back
    assert (store.task_root(SHA) / "bootstrap").is_file()


def test_total_size_counts_only_stored_zips(store: FileCodeStore) -> None:
    assert store.total_size() == 0
    a = store.put(PACKAGE)
    b = store.put(make_zip(("x", b"y" * 1000, 0o100644)))
    assert store.total_size() == a.size + b.size


def test_stale_leftovers_are_removed_at_start(tmp_path: Path) -> None:
    root = tmp_path / "code"
    FileCodeStore(root)
    stale_tmp = root / "zips" / f".{SHA}.abc.tmp"
    stale_tmp.write_bytes(b"partial")
    stale_staging = root / "tree" / f".{SHA}.abc.staging"
    (stale_staging / "d").mkdir(parents=True)
    os.chmod(stale_staging / "d", 0o555)
    fresh = root / "tree" / f".{SHA}.def.staging"
    fresh.mkdir()
    old = time.time() - 7200
    for p in (stale_tmp, stale_staging):
        os.utime(p, (old, old))
    FileCodeStore(root)
    assert sorted(p.name for p in (root / "tree").iterdir()) == [fresh.name]
    assert list((root / "zips").iterdir()) == []
    fresh.rmdir()


# ------------------------------------------------------------------------------------ other uids


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every uid can traverse (pytest's tmp_path lives under a 0o700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="shoal-code-store-"))
    os.chmod(path, 0o755)
    yield path
    remove_tree(path)


def _as_nobody(fn: object) -> int:
    """Run ``fn`` in a forked child as uid/gid nobody; returns the child's exit status."""
    codecs.lookup("cp437")  # zipfile's name codec: load it while this interpreter's files are still readable
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            assert callable(fn)
            fn()
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch uid")
def test_tree_is_readable_and_runnable_by_another_uid(shared_dir: Path) -> None:
    store = FileCodeStore(shared_dir / "code")
    store.put(PACKAGE)
    root = store.task_root(SHA)

    def check() -> None:
        assert (root / "lib" / "data.txt").read_bytes() == b"x" * 10_000  # was 0o600 in the zip
        assert sorted(os.listdir(root)) == ["bootstrap", "index.py", "lib"]
        out = subprocess.run([root / "bootstrap"], capture_output=True, check=True)
        assert out.stdout == b"hello\n"
        try:
            (root / "index.py").write_bytes(b"tampered")
        except PermissionError:
            pass
        else:
            raise AssertionError("the tree must not be writable by others")

    assert _as_nobody(check) == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch uid")
def test_unprivileged_owner_can_delete_its_read_only_tree(shared_dir: Path) -> None:
    """As a non-root owner, permission bits apply: delete must make the read-only tree writable first."""
    os.chown(shared_dir, NOBODY, NOBODY)

    def lifecycle() -> None:
        store = FileCodeStore(shared_dir / "code")
        store.put(PACKAGE)
        root = store.task_root(SHA)
        assert not os.access(root, os.W_OK)
        store.delete(SHA)
        assert not root.exists()
        assert not store.has(SHA)
        assert leftovers(store) == []

    assert _as_nobody(lifecycle) == 0

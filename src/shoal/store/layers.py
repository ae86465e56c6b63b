"""Layer versions and their permissions on SQLAlchemy Core: SQLite (embedded) and PostgreSQL (cluster).

Three tables, in their own ``MetaData`` (they may share the function store's engine and database file):

* ``layers`` — one row per (account, layer name): the version counter. Versions are numbered from 1 and a
  number is never given out twice, even after every version was deleted (spec §11).
* ``layer_versions`` — one row per published version. Deleting a version only marks it ``deleted``: it stays
  usable by the functions that already reference it, as on AWS, and its number stays taken.
* ``layer_version_statements`` — the resource-based policy of a version, one row per statement, in the order
  they were added; the version row holds the policy's ``RevisionId`` (NULL while there is no statement).

Every method is synchronous (run it in a worker thread from async code) and each write is one transaction.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shoal.core import ids
from shoal.core.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
)
from shoal.store.packages import MAX_UNZIPPED, remove_stale_leftovers, remove_tree

metadata = sa.MetaData()

layers = sa.Table(
    "layers",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("name", sa.String(140), primary_key=True),
    sa.Column("next_version", sa.BigInteger, nullable=False),
)

layer_versions = sa.Table(
    "layer_versions",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("name", sa.String(140), primary_key=True),
    sa.Column("version", sa.BigInteger, primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("compatible_runtimes", sa.Text, nullable=False),  # JSON list
    sa.Column("compatible_architectures", sa.Text, nullable=False),  # JSON list
    sa.Column("license_info", sa.Text, nullable=True),
    sa.Column("created_date", sa.String(32), nullable=False),
    sa.Column("code_sha256_hex", sa.String(64), nullable=False, index=True),
    sa.Column("code_sha256", sa.String(44), nullable=False),  # base64, AWS's CodeSha256
    sa.Column("code_size", sa.BigInteger, nullable=False),
    sa.Column("unzipped_size", sa.BigInteger, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    sa.Column("policy_revision_id", sa.String(36), nullable=True),
)

statements = sa.Table(
    "layer_version_statements",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("name", sa.String(140), primary_key=True),
    sa.Column("version", sa.BigInteger, primary_key=True),
    sa.Column("statement_id", sa.String(100), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("principal", sa.String(256), nullable=False),
    sa.Column("organization_id", sa.String(64), nullable=True),
)


REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetLayerPolicy API to retrieve the latest Revision Id"
)


@dataclass(frozen=True, slots=True)
class LayerVersionRecord:
    account_id: str
    name: str
    version: int
    description: str
    compatible_runtimes: tuple[str, ...]
    compatible_architectures: tuple[str, ...]
    license_info: str | None
    created_date: str  # "2018-11-14T23:03:52.894+0000"
    code_sha256_hex: str
    code_sha256: str  # base64 of the digest (CodeSha256)
    code_size: int  # zip bytes (CodeSize)
    unzipped_size: int  # bytes the layer occupies under /opt
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class NewLayerVersion:
    """What a publish stores; the store gives it its number."""

    description: str
    compatible_runtimes: tuple[str, ...]
    compatible_architectures: tuple[str, ...]
    license_info: str | None
    created_date: str
    code_sha256_hex: str
    code_sha256: str
    code_size: int
    unzipped_size: int


@dataclass(frozen=True, slots=True)
class LayerStatement:
    statement_id: str
    action: str
    principal: str
    organization_id: str | None = None


@dataclass(frozen=True, slots=True)
class LayerPolicy:
    statements: tuple[LayerStatement, ...]
    revision_id: str


class LayerVersionMissing(LookupError):
    """The (not deleted) layer version a permission change names does not exist."""


class StatementMissing(LookupError):
    """The statement a RemoveLayerVersionPermission names is not in the policy."""


def _record(row: Any) -> LayerVersionRecord:
    return LayerVersionRecord(
        account_id=row.account_id,
        name=row.name,
        version=int(row.version),
        description=row.description,
        compatible_runtimes=tuple(json.loads(row.compatible_runtimes)),
        compatible_architectures=tuple(json.loads(row.compatible_architectures)),
        license_info=row.license_info,
        created_date=row.created_date,
        code_sha256_hex=row.code_sha256_hex,
        code_sha256=row.code_sha256,
        code_size=int(row.code_size),
        unzipped_size=int(row.unzipped_size),
        deleted=bool(row.deleted),
    )


def _version_key(account_id: str, name: str, version: int) -> list[sa.ColumnElement[bool]]:
    return [
        layer_versions.c.account_id == account_id,
        layer_versions.c.name == name,
        layer_versions.c.version == version,
    ]


def _statement_key(account_id: str, name: str, version: int) -> list[sa.ColumnElement[bool]]:
    return [
        statements.c.account_id == account_id,
        statements.c.name == name,
        statements.c.version == version,
    ]


class SqlLayerStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        metadata.create_all(engine)

    # ---- versions -------------------------------------------------------------------------------------

    def publish(self, account_id: str, name: str, new: NewLayerVersion) -> LayerVersionRecord:
        """Store a new version under the next number of this layer (1 for a new layer)."""
        for attempt in range(3):
            try:
                with self._engine.begin() as conn:
                    version = self._take_number(conn, account_id, name)
                    conn.execute(
                        layer_versions.insert().values(
                            account_id=account_id,
                            name=name,
                            version=version,
                            description=new.description,
                            compatible_runtimes=json.dumps(list(new.compatible_runtimes)),
                            compatible_architectures=json.dumps(list(new.compatible_architectures)),
                            license_info=new.license_info,
                            created_date=new.created_date,
                            code_sha256_hex=new.code_sha256_hex,
                            code_sha256=new.code_sha256,
                            code_size=new.code_size,
                            unzipped_size=new.unzipped_size,
                            deleted=False,
                            policy_revision_id=None,
                        )
                    )
            except sa.exc.IntegrityError:
                # another writer created the layer's counter row between our UPDATE and INSERT: retry
                if attempt == 2:
                    raise
                continue
            return LayerVersionRecord(
                account_id=account_id,
                name=name,
                version=version,
                description=new.description,
                compatible_runtimes=new.compatible_runtimes,
                compatible_architectures=new.compatible_architectures,
                license_info=new.license_info,
                created_date=new.created_date,
                code_sha256_hex=new.code_sha256_hex,
                code_sha256=new.code_sha256,
                code_size=new.code_size,
                unzipped_size=new.unzipped_size,
            )
        raise AssertionError("unreachable")

    @staticmethod
    def _take_number(conn: Connection, account_id: str, name: str) -> int:
        """The next version number, taken inside the caller's transaction. The UPDATE comes first so that
        the transaction holds the write lock (SQLite) or the row lock (PostgreSQL) before reading."""
        key = [layers.c.account_id == account_id, layers.c.name == name]
        result = conn.execute(layers.update().where(*key).values(next_version=layers.c.next_version + 1))
        if result.rowcount == 0:
            conn.execute(layers.insert().values(account_id=account_id, name=name, next_version=2))
            return 1
        taken = conn.execute(sa.select(layers.c.next_version).where(*key)).scalar_one()
        return int(taken) - 1

    def get(
        self, account_id: str, name: str, version: int, *, include_deleted: bool = False
    ) -> LayerVersionRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(layer_versions).where(*_version_key(account_id, name, version))
            ).first()
        if row is None or (row.deleted and not include_deleted):
            return None
        return _record(row)

    def versions(self, account_id: str, name: str | None = None) -> list[LayerVersionRecord]:
        """Versions that are not deleted, by layer name, newest first within a layer."""
        query = sa.select(layer_versions).where(
            layer_versions.c.account_id == account_id, layer_versions.c.deleted == sa.false()
        )
        if name is not None:
            query = query.where(layer_versions.c.name == name)
        query = query.order_by(layer_versions.c.name, layer_versions.c.version.desc())
        with self._engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def delete(self, account_id: str, name: str, version: int) -> bool:
        """Mark a version deleted (its number stays taken); False when there was none to delete."""
        with self._engine.begin() as conn:
            result = conn.execute(
                layer_versions.update()
                .where(*_version_key(account_id, name, version), layer_versions.c.deleted == sa.false())
                .values(deleted=True)
            )
        return bool(result.rowcount)

    def next_version(self, account_id: str, name: str) -> int:
        """The number the next publish of this layer will get."""
        with self._engine.connect() as conn:
            taken = conn.execute(
                sa.select(layers.c.next_version).where(
                    layers.c.account_id == account_id, layers.c.name == name
                )
            ).scalar_one_or_none()
        return 1 if taken is None else int(taken)

    def code_in_use(self, sha256_hex: str) -> bool:
        """Whether any layer version, deleted ones included (functions may still use them), holds this zip."""
        with self._engine.connect() as conn:
            return (
                conn.execute(
                    sa.select(sa.literal(1)).where(layer_versions.c.code_sha256_hex == sha256_hex).limit(1)
                ).first()
                is not None
            )

    # ---- permissions ----------------------------------------------------------------------------------

    def policy(self, account_id: str, name: str, version: int) -> LayerPolicy | None:
        """The version's policy; None when it has no statement. ``LayerVersionMissing`` if no such version."""
        with self._engine.connect() as conn:
            revision = self._live_revision(conn, account_id, name, version)
            if revision is None:
                return None
            return LayerPolicy(self._statements(conn, account_id, name, version), revision)

    def add_statement(
        self,
        account_id: str,
        name: str,
        version: int,
        statement: LayerStatement,
        expected_revision: str | None = None,
    ) -> LayerPolicy:
        """Add a statement; returns the new policy. ``LayerVersionMissing``, ``ResourceConflictException``
        (the StatementId is taken) or ``PreconditionFailedException`` (RevisionId differs)."""
        try:
            with self._engine.begin() as conn:
                current = self._live_revision(conn, account_id, name, version)
                taken = conn.execute(
                    sa.select(statements.c.position).where(
                        *_statement_key(account_id, name, version),
                        statements.c.statement_id == statement.statement_id,
                    )
                ).first()
                if taken is not None:
                    raise _duplicate(statement.statement_id)
                if expected_revision is not None and expected_revision != current:
                    raise PreconditionFailedException(REVISION_MISMATCH)
                revision = ids.revision_id()
                self._swap_revision(conn, account_id, name, version, current, revision)
                position = conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(statements.c.position), 0)).where(
                        *_statement_key(account_id, name, version)
                    )
                ).scalar_one()
                conn.execute(
                    statements.insert().values(
                        account_id=account_id,
                        name=name,
                        version=version,
                        statement_id=statement.statement_id,
                        position=int(position) + 1,
                        action=statement.action,
                        principal=statement.principal,
                        organization_id=statement.organization_id,
                    )
                )
                return LayerPolicy(self._statements(conn, account_id, name, version), revision)
        except sa.exc.IntegrityError as exc:  # a concurrent add of the same StatementId won
            raise _duplicate(statement.statement_id) from exc

    def remove_statement(
        self,
        account_id: str,
        name: str,
        version: int,
        statement_id: str,
        expected_revision: str | None = None,
    ) -> None:
        """Remove a statement. ``LayerVersionMissing``, ``PreconditionFailedException`` or
        ``StatementMissing``. Removing the last statement removes the policy."""
        with self._engine.begin() as conn:
            current = self._live_revision(conn, account_id, name, version)
            if expected_revision is not None and expected_revision != current:
                raise PreconditionFailedException(REVISION_MISMATCH)
            removed = conn.execute(
                statements.delete().where(
                    *_statement_key(account_id, name, version), statements.c.statement_id == statement_id
                )
            )
            if not removed.rowcount:
                raise StatementMissing(statement_id)
            left = conn.execute(
                sa.select(sa.func.count())
                .select_from(statements)
                .where(*_statement_key(account_id, name, version))
            ).scalar_one()
            self._swap_revision(conn, account_id, name, version, current, ids.revision_id() if left else None)

    @staticmethod
    def _statements(conn: Connection, account_id: str, name: str, version: int) -> tuple[LayerStatement, ...]:
        rows = conn.execute(
            sa.select(statements)
            .where(*_statement_key(account_id, name, version))
            .order_by(statements.c.position)
        ).all()
        return tuple(LayerStatement(r.statement_id, r.action, r.principal, r.organization_id) for r in rows)

    @staticmethod
    def _live_revision(conn: Connection, account_id: str, name: str, version: int) -> str | None:
        row = conn.execute(
            sa.select(layer_versions.c.policy_revision_id, layer_versions.c.deleted).where(
                *_version_key(account_id, name, version)
            )
        ).first()
        if row is None or row.deleted:
            raise LayerVersionMissing(f"{account_id}:{name}:{version}")
        return None if row.policy_revision_id is None else str(row.policy_revision_id)

    @staticmethod
    def _swap_revision(
        conn: Connection, account_id: str, name: str, version: int, old: str | None, new: str | None
    ) -> None:
        """Compare-and-set the policy's RevisionId: a concurrent change in between fails the precondition."""
        result = conn.execute(
            layer_versions.update()
            .where(
                *_version_key(account_id, name, version),
                layer_versions.c.policy_revision_id.is_not_distinct_from(old),
            )
            .values(policy_revision_id=new)
        )
        if result.rowcount == 0:
            raise PreconditionFailedException(REVISION_MISMATCH)

    def close(self) -> None:
        self._engine.dispose()


def _duplicate(statement_id: str) -> ResourceConflictException:
    return ResourceConflictException(
        f"The statement id ({statement_id}) provided already exists. Please provide a new statement id, "
        "or remove the existing statement."
    )


# ---------------------------------------------------------------------------------------------- /opt trees


class OptTrees:
    """Merged ``/opt`` directories under ``root`` (``<data-dir>/code/opt``), one per ordered list of zips.

    ``opt/<sha256 of the ordered zip SHA-256s>/`` is built once from the layers' extracted trees (the code
    store's ``task_root``), in a private staging directory renamed into place, and is read-only afterwards,
    like the code store's trees. Regular files are hard links into those trees (same filesystem, already
    read-only), copies where linking is not possible. Thread-safe; process-safe by atomic renames.
    """

    def __init__(
        self, root: Path, task_root: Callable[[str], Path], *, max_unzipped: int = MAX_UNZIPPED
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.task_root = task_root
        self.max_unzipped = max_unzipped
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        remove_stale_leftovers(self.root)  # staging trees a crashed builder left behind

    def build(self, shas: Sequence[str]) -> Path:
        """The merged tree of these layer zips, in order (a single layer's is its own extracted tree)."""
        if len(shas) == 1:
            return self.task_root(shas[0])
        key = hashlib.sha256("\n".join(shas).encode()).hexdigest()
        dest = self.root / key
        if dest.is_dir():
            return dest
        with self._lock_for(key):
            if dest.is_dir():
                return dest
            trees = [self.task_root(sha) for sha in shas]
            staging = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".staging", dir=self.root))
            try:
                for tree in trees:
                    _merge(tree, staging)
                if tree_bytes(staging) > self.max_unzipped:
                    raise InvalidParameterValueException(
                        f"Layers consume more than the available size of {self.max_unzipped} bytes"
                    )
                _seal(staging)
            except BaseException:
                remove_tree(staging)
                raise
            try:
                os.rename(staging, dest)
            except OSError as exc:  # another process built the same tree first: keep theirs
                remove_tree(staging)
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        return dest

    def _lock_for(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


def tree_bytes(root: Path) -> int:
    """Bytes a tree occupies as extraction counts them: file contents plus symbolic-link targets."""
    total = 0
    pending = [os.fspath(root)]
    while pending:
        with os.scandir(pending.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.is_symlink():
                    total += len(os.fsencode(os.readlink(entry.path)))
                else:
                    total += entry.stat(follow_symlinks=False).st_size
    return total


def _merge(src: Path, dst: Path) -> None:
    """Lay the extracted tree ``src`` over ``dst`` (a private staging directory).

    Nothing is ever written through a symbolic link: links are leaves, copied as links; an entry of another
    kind at the same path is removed first. Regular files are hard links to the (read-only, same-filesystem)
    extracted trees when possible, copies otherwise.
    """
    pending = [(os.fspath(src), os.fspath(dst))]
    while pending:
        source_dir, target_dir = pending.pop()
        with os.scandir(source_dir) as it:
            for entry in it:
                target = os.path.join(target_dir, entry.name)
                try:
                    existing: os.stat_result | None = os.lstat(target)
                except FileNotFoundError:
                    existing = None
                if entry.is_dir(follow_symlinks=False):
                    if existing is not None and stat.S_ISDIR(existing.st_mode):
                        pending.append((entry.path, target))
                        continue
                    if existing is not None:
                        os.unlink(target)
                    os.mkdir(target, 0o755)
                    pending.append((entry.path, target))
                    continue
                if existing is not None:
                    if stat.S_ISDIR(existing.st_mode):
                        remove_tree(Path(target))
                    else:
                        os.unlink(target)
                if entry.is_symlink():
                    os.symlink(os.readlink(entry.path), target)
                else:
                    _link_or_copy(entry.path, target)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target, follow_symlinks=False)
        return
    except OSError:
        pass  # another filesystem, hard links forbidden, too many links: copy
    mode = os.lstat(source).st_mode & 0o555
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with open(source, "rb") as src, open(os.open(target, flags, 0o600), "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
        out.flush()
        os.fchmod(out.fileno(), mode)


def _seal(root: Path) -> None:
    """Directories read-only (0o555), deepest first; files already are."""
    dirs: list[str] = []
    pending = [os.fspath(root)]
    while pending:
        directory = pending.pop()
        dirs.append(directory)
        with os.scandir(directory) as it:
            pending.extend(e.path for e in it if e.is_dir(follow_symlinks=False))
    for directory in reversed(dirs):
        os.chmod(directory, 0o555)

"""``FunctionStore`` on SQLAlchemy Core: SQLite (embedded) and PostgreSQL (cluster) share this code."""

from __future__ import annotations

import builtins
import dataclasses
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shoal.core.errors import PreconditionFailedException, ResourceConflictException
from shoal.core.types import Alias, FunctionConfig, Policy, State, UpdateStatus

metadata = sa.MetaData()

functions = sa.Table(
    "functions",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(16), primary_key=True),
    sa.Column("revision_id", sa.String(36), nullable=False),
    sa.Column("code_key", sa.String(64), nullable=False, index=True),
    sa.Column("data", sa.Text, nullable=False),
)

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("function_name", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("function_version", sa.String(16), nullable=False),
    sa.Column("additional_version", sa.String(16), nullable=True),
    sa.Column("data", sa.Text, nullable=False),
)

policies = sa.Table(
    "policies",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("function_name", sa.String(64), primary_key=True),
    sa.Column("qualifier", sa.String(128), primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
)

_LATEST_SORT = sa.case((functions.c.version == "$LATEST", 0), else_=1)


def sqlite_engine(path: Path) -> Engine:
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")  # acknowledged writes survive a power cut
        cur.execute("PRAGMA busy_timeout=5000")
        cur.close()

    return engine


def _dump(config: FunctionConfig) -> str:
    data = dataclasses.asdict(config)
    data["architectures"] = list(config.architectures)
    return json.dumps(data, separators=(",", ":"))


def _load(text: str) -> FunctionConfig:
    data = json.loads(text)
    data["architectures"] = tuple(data["architectures"])
    data["state"] = State(data["state"])
    data["last_update_status"] = UpdateStatus(data["last_update_status"])
    data["layers"] = tuple(data.get("layers") or ())
    return FunctionConfig(**data)


class SqlFunctionStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        metadata.create_all(engine)

    def create(self, config: FunctionConfig) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(functions.insert().values(**self._row(config)))
        except sa.exc.IntegrityError as exc:
            raise ResourceConflictException(f"Function already exist: {config.name}") from exc

    def get(self, account_id: str, name: str, version: str) -> FunctionConfig | None:
        with self._engine.connect() as conn:
            text = conn.execute(
                sa.select(functions.c.data).where(
                    functions.c.account_id == account_id,
                    functions.c.name == name,
                    functions.c.version == version,
                )
            ).scalar_one_or_none()
        return None if text is None else _load(text)

    def put(self, config: FunctionConfig, *, expected_revision: str | None = None) -> None:
        where = [
            functions.c.account_id == config.account_id,
            functions.c.name == config.name,
            functions.c.version == config.version,
        ]
        if expected_revision is not None:
            where.append(functions.c.revision_id == expected_revision)
        with self._engine.begin() as conn:
            row = self._row(config)
            result = conn.execute(functions.update().where(*where).values(**row))
            if result.rowcount == 0:
                if expected_revision is not None:
                    raise PreconditionFailedException(
                        "The Revision Id provided does not match the latest Revision Id. "
                        "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
                    )
                conn.execute(functions.insert().values(**row))

    def delete(self, account_id: str, name: str, version: str | None = None) -> list[FunctionConfig]:
        """Delete one version, or the whole function with its aliases and policies (``version`` None)."""
        where = [functions.c.account_id == account_id, functions.c.name == name]
        if version is not None:
            where.append(functions.c.version == version)
        with self._engine.begin() as conn:
            rows = conn.execute(sa.select(functions.c.data).where(*where)).scalars().all()
            conn.execute(functions.delete().where(*where))
            if version is None:
                conn.execute(
                    aliases.delete().where(
                        aliases.c.account_id == account_id, aliases.c.function_name == name
                    )
                )
                conn.execute(
                    policies.delete().where(
                        policies.c.account_id == account_id, policies.c.function_name == name
                    )
                )
            else:
                conn.execute(
                    policies.delete().where(
                        policies.c.account_id == account_id,
                        policies.c.function_name == name,
                        policies.c.qualifier == version,
                    )
                )
        return [_load(r) for r in rows]

    # ---- aliases ---------------------------------------------------------------------------------------

    def put_alias(self, alias: Alias, *, create: bool = False) -> None:
        row = {
            "account_id": alias.account_id,
            "function_name": alias.function_name,
            "name": alias.name,
            "function_version": alias.function_version,
            "additional_version": alias.additional_version,
            "data": json.dumps(dataclasses.asdict(alias)),
        }
        with self._engine.begin() as conn:
            if create:
                try:
                    conn.execute(aliases.insert().values(**row))
                except sa.exc.IntegrityError as exc:
                    raise ResourceConflictException(f"Alias already exists: {alias.name}") from exc
                return
            conn.execute(
                aliases.update()
                .where(
                    aliases.c.account_id == alias.account_id,
                    aliases.c.function_name == alias.function_name,
                    aliases.c.name == alias.name,
                )
                .values(**row)
            )

    def delete_alias(self, account_id: str, function_name: str, name: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                aliases.delete().where(
                    aliases.c.account_id == account_id,
                    aliases.c.function_name == function_name,
                    aliases.c.name == name,
                )
            )
            conn.execute(
                policies.delete().where(
                    policies.c.account_id == account_id,
                    policies.c.function_name == function_name,
                    policies.c.qualifier == name,
                )
            )

    def list_aliases(self, account_id: str | None = None) -> builtins.list[Alias]:
        query = sa.select(aliases.c.data).order_by(
            aliases.c.account_id, aliases.c.function_name, aliases.c.name
        )
        if account_id is not None:
            query = query.where(aliases.c.account_id == account_id)
        with self._engine.connect() as conn:
            return [Alias(**json.loads(r)) for r in conn.execute(query).scalars().all()]

    # ---- resource policies -----------------------------------------------------------------------------

    def put_policy(self, policy: Policy) -> None:
        data = json.dumps({**dataclasses.asdict(policy), "statements": list(policy.statements)})
        key = {
            "account_id": policy.account_id,
            "function_name": policy.function_name,
            "qualifier": policy.qualifier,
        }
        with self._engine.begin() as conn:
            conn.execute(policies.delete().where(*(policies.c[k] == v for k, v in key.items())))
            if policy.statements:
                conn.execute(policies.insert().values(**key, data=data))

    def list_policies(self, account_id: str | None = None) -> builtins.list[Policy]:
        query = sa.select(policies.c.data)
        if account_id is not None:
            query = query.where(policies.c.account_id == account_id)
        with self._engine.connect() as conn:
            out = []
            for text in conn.execute(query).scalars().all():
                data = json.loads(text)
                data["statements"] = tuple(data["statements"])
                out.append(Policy(**data))
            return out

    def list(self, account_id: str | None = None) -> list[FunctionConfig]:
        query = sa.select(functions.c.data).order_by(functions.c.account_id, functions.c.name, _LATEST_SORT)
        if account_id is not None:
            query = query.where(functions.c.account_id == account_id)
        with self._engine.connect() as conn:
            rows = conn.execute(query).scalars().all()
        configs = [_load(r) for r in rows]
        # numbered versions in numeric order after $LATEST
        configs.sort(
            key=lambda c: (
                c.account_id,
                c.name,
                c.version != "$LATEST",
                int(c.version) if c.version.isdigit() else 0,
            )
        )
        return configs

    def code_in_use(self, code_key: str) -> bool:
        with self._engine.connect() as conn:
            return (
                conn.execute(
                    sa.select(sa.literal(1)).where(functions.c.code_key == code_key).limit(1)
                ).first()
                is not None
            )

    def close(self) -> None:
        self._engine.dispose()

    @staticmethod
    def _row(config: FunctionConfig) -> dict[str, Any]:
        return {
            "account_id": config.account_id,
            "name": config.name,
            "version": config.version,
            "revision_id": config.revision_id,
            "code_key": config.code_key,
            "data": _dump(config),
        }

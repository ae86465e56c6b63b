"""Published versions: immutable snapshots of ``$LATEST``, numbered from 1 and never reused (spec §1.3)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from shoal.control.functions import FunctionPage, FunctionService, page_of
from shoal.core import ids
from shoal.core.arns import LATEST, FunctionRef
from shoal.core.clock import format_lambda_timestamp
from shoal.core.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
)
from shoal.core.types import FunctionConfig, State, UpdateStatus

# What makes two snapshots "the same" for PublishVersion's no-change rule.
_SNAPSHOT_FIELDS = (
    "code_sha256",
    "runtime",
    "role",
    "handler",
    "timeout",
    "memory_size",
    "ephemeral_storage",
    "environment",
    "architectures",
    "tracing_mode",
    "log_format",
    "log_group",
    "application_log_level",
    "system_log_level",
    "dead_letter_target",
    "kms_key_arn",
    "snap_start_apply_on",
    "layers",
)


def _snapshot(config: FunctionConfig) -> tuple[Any, ...]:
    return (*(getattr(config, f, None) for f in _SNAPSHOT_FIELDS), config.extra.get("VpcConfig"))


class VersionService:
    def __init__(self, functions: FunctionService) -> None:
        self.functions = functions
        self.catalog = functions.catalog
        functions.publisher = self._publish_locked

    async def publish(self, account_id: str, ref: FunctionRef, body: Mapping[str, Any]) -> FunctionConfig:
        if ref.qualifier not in (None, LATEST):
            raise InvalidParameterValueException("PublishVersion publishes $LATEST; do not name a version.")
        description = body.get("Description")
        if description is not None and (not isinstance(description, str) or len(description) > 256):
            raise InvalidParameterValueException("Description must be a string of at most 256 characters.")
        async with self.functions.lock(account_id, ref.name):
            latest = self.functions.get(account_id, FunctionRef(ref.name, ref.account_id))
            if latest.state is State.PENDING:
                raise ResourceConflictException(
                    "The operation cannot be performed at this time. "
                    "The function is currently in the following state: Pending"
                )
            if latest.last_update_status is UpdateStatus.IN_PROGRESS:
                raise ResourceConflictException(
                    "The operation cannot be performed at this time. An update is in progress for resource: "
                    f"{self.functions.arn(latest)}"
                )
            if body.get("RevisionId") is not None and body["RevisionId"] != latest.revision_id:
                raise PreconditionFailedException(
                    "The Revision Id provided does not match the latest Revision Id. "
                    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
                )
            code_sha = body.get("CodeSha256")
            if code_sha is not None and code_sha != latest.code_sha256:
                raise InvalidParameterValueException(
                    f"CodeSHA256 ({code_sha}) is different from current CodeSHA256 in $LATEST "
                    f"({latest.code_sha256}). Please try again with the current CodeSHA256."
                )
            return await self._publish_locked(latest, description)

    async def _publish_locked(self, latest: FunctionConfig, description: str | None) -> FunctionConfig:
        """Publish ``latest`` (caller holds the function's lock): the newest version if nothing changed."""
        newest = self.newest(latest.account_id, latest.name)
        if newest is not None and _snapshot(newest) == _snapshot(latest):
            return newest
        number = latest.last_version + 1
        version = latest.evolve(
            version=str(number),
            description=description if description is not None else latest.description,
            revision_id=ids.revision_id(),
            last_modified=format_lambda_timestamp(time.time()),
            last_version=0,
        )
        await self.catalog.put(latest.evolve(last_version=number), expected_revision=latest.revision_id)
        await self.catalog.create_version(version)
        if version.state is State.PENDING or version.last_update_status is UpdateStatus.IN_PROGRESS:
            self.functions.settle_later(version)
        return version

    def newest(self, account_id: str, name: str) -> FunctionConfig | None:
        published = [c for c in self.catalog.versions(account_id, name) if c.version != LATEST]
        return max(published, key=lambda c: int(c.version), default=None)

    def list(
        self, account_id: str, ref: FunctionRef, marker: str | None, max_items: int | None
    ) -> FunctionPage:
        latest = self.functions.get(account_id, FunctionRef(ref.name, ref.account_id))
        versions = sorted(
            self.catalog.versions(account_id, latest.name),
            key=lambda c: (c.version != LATEST, int(c.version) if c.version.isdigit() else 0),
        )
        return page_of(versions, marker, max_items)

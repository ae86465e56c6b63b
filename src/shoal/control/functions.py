"""Function use-cases over the store: create, read, update, delete, list; the Pending→Active settling.

Each write goes through the catalog (store first, then memory). State changes that AWS performs
asynchronously (``Pending → Active``, ``InProgress → Successful``) are done by a settle task owned by the
server's supervisor, and re-run at start-up for anything a crash left unsettled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from shoal.control import validation as v
from shoal.control.layers import LayerService, ResolvedLayer, check_total_unzipped
from shoal.control.paging import offset_page
from shoal.core import ids
from shoal.core.arns import LATEST, FunctionRef, function_arn
from shoal.core.clock import format_lambda_timestamp
from shoal.core.errors import (
    AccessDeniedException,
    InvalidParameterValueException,
    NotImplementedException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
    ShoalError,
    ValidationException,
)
from shoal.core.tasks import Supervisor
from shoal.core.types import Alias, FunctionConfig, State, UpdateStatus
from shoal.runtimes.registry import RuntimeRegistry
from shoal.store.catalog import FunctionCatalog
from shoal.store.packages import PackageInfo

log = logging.getLogger("shoal.control")

ACCOUNT_CONCURRENCY = 1000
ZIP_LIMIT = v.ZIP_LIMIT


class CodeStoreLike(Protocol):
    def put(self, data: bytes) -> PackageInfo: ...
    def task_root(self, sha256_hex: str) -> Path: ...
    def read(self, sha256_hex: str) -> bytes: ...
    def delete(self, sha256_hex: str) -> None: ...
    def total_size(self) -> int: ...


@dataclass(frozen=True)
class FunctionPage:
    functions: list[FunctionConfig]
    next_marker: str | None


async def _no_publisher(config: FunctionConfig, description: str | None) -> FunctionConfig:
    raise NotImplementedException.for_operation("PublishVersion")


def page_of(items: list[FunctionConfig], marker: str | None, max_items: int | None) -> FunctionPage:
    """One page of at most 50 (spec §1.1); the marker is an opaque offset."""
    return FunctionPage(*offset_page(items, marker, max_items))


def _conflict_pending() -> ResourceConflictException:
    return ResourceConflictException(
        "The operation cannot be performed at this time. "
        "The function is currently in the following state: Pending"
    )


class FunctionService:
    def __init__(
        self,
        catalog: FunctionCatalog,
        code: CodeStoreLike,
        runtimes: RuntimeRegistry,
        supervisor: Supervisor,
        region: str,
        layers: LayerService | None = None,
    ) -> None:
        self.catalog = catalog
        self.layers = layers
        self.code = code
        self.runtimes = runtimes
        self.supervisor = supervisor
        self.region = region
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.account_limit = ACCOUNT_CONCURRENCY
        # PublishVersion's core, set by VersionService (Publish=true on CreateFunction/UpdateFunctionCode)
        self.publisher: Callable[[FunctionConfig, str | None], Awaitable[FunctionConfig]] = _no_publisher

    def lock(self, account_id: str, name: str) -> asyncio.Lock:
        return self._locks.setdefault((account_id, name), asyncio.Lock())

    def arn(self, config: FunctionConfig, qualified: bool = False) -> str:
        return function_arn(
            self.region, config.account_id, config.name, config.version if qualified else None
        )

    # ---- reads ----------------------------------------------------------------------------------------

    def get(self, account_id: str, ref: FunctionRef) -> FunctionConfig:
        """The configuration a name/ARN and qualifier (version or alias) name."""
        return self.resolve(account_id, ref)[0]

    def resolve(self, account_id: str, ref: FunctionRef) -> tuple[FunctionConfig, Alias | None]:
        self._check_account(account_id, ref)
        qualifier = ref.qualifier or LATEST
        alias = None
        if qualifier != LATEST and not qualifier.isdigit():
            alias = self.catalog.alias(account_id, ref.name, qualifier)
            if alias is None:
                if self.catalog.get(account_id, ref.name, LATEST) is None:
                    raise self.not_found(account_id, ref.name, ref.qualifier)
                raise ResourceNotFoundException(
                    f"Alias not found: {function_arn(self.region, account_id, ref.name, qualifier)}"
                )
            qualifier = alias.function_version
        config = self.catalog.get(account_id, ref.name, qualifier)
        if config is None:
            raise self.not_found(account_id, ref.name, ref.qualifier)
        return config, alias

    def not_found(
        self, account_id: str, name: str, qualifier: str | None = None
    ) -> ResourceNotFoundException:
        return ResourceNotFoundException(
            f"Function not found: {function_arn(self.region, account_id, name, qualifier or None)}"
        )

    def list(
        self, account_id: str, marker: str | None, max_items: int | None, all_versions: bool
    ) -> FunctionPage:
        configs = sorted(
            (c for c in self.catalog.all(account_id) if all_versions or c.version == LATEST),
            key=lambda c: (c.name, c.version != LATEST, int(c.version) if c.version.isdigit() else 0),
        )
        return page_of(configs, marker, max_items)

    def account_settings(self, account_id: str) -> dict[str, Any]:
        configs = self.catalog.all(account_id)
        code_keys = {c.code_key: c.code_size for c in configs}
        return {
            "AccountLimit": {
                "TotalCodeSize": 80_530_636_800,
                "CodeSizeUnzipped": 262_144_000,
                "CodeSizeZipped": ZIP_LIMIT,
                "ConcurrentExecutions": self.account_limit,
                "UnreservedConcurrentExecutions": self.account_limit
                - self.catalog.reserved_total(account_id),
            },
            "AccountUsage": {
                "TotalCodeSize": sum(code_keys.values()),
                "FunctionCount": len({c.name for c in configs}),
            },
        }

    # ---- writes ---------------------------------------------------------------------------------------

    async def create(self, account_id: str, body: Mapping[str, Any]) -> FunctionConfig:
        from shoal.core.arns import parse_function_ref

        p = v.Problems()
        name_value = body.get("FunctionName")
        role = body.get("Role")
        if name_value is None:
            p.add(None, "functionName", "Member must not be null")
        if role is None:
            p.add(None, "role", "Member must not be null")
        if body.get("Code") is None:
            p.add(None, "code", "Member must not be null")
        p.raise_if_any()
        ref = parse_function_ref(v._str(name_value, "FunctionName"))
        if len(ref.name) > 64:
            raise ValidationException.of(
                [
                    f"Value '{name_value}' at 'functionName' failed to satisfy constraint: "
                    "Member must have length less than or equal to 64"
                ]
            )
        if ref.qualifier is not None:
            raise InvalidParameterValueException(
                "Unsupported parameter: FunctionName cannot include a qualifier in CreateFunction."
            )
        self._check_account(account_id, ref)
        v.check_common(p, body)
        architectures = v.check_architectures(p, body.get("Architectures"))
        variables = v.check_environment(p, body.get("Environment"))
        p.raise_if_any()
        self._refuse_unsupported(body, create=True)
        if body.get("Tags") is not None:
            from shoal.control.tags import check_tags

            check_tags(body["Tags"])
        if body.get("PackageType", "Zip") != "Zip":
            raise NotImplementedException(
                "PackageType Image (container images) is not supported by Shoal yet."
            )
        if not body.get("Runtime") or not body.get("Handler"):
            raise InvalidParameterValueException(
                "Runtime and Handler are mandatory parameters for functions created with deployment packages."
            )
        self.runtimes.require(body["Runtime"])
        v.check_snap_start((body.get("SnapStart") or {}).get("ApplyOn") or "None", body["Runtime"])
        layers = await self._resolve_layers(account_id, body.get("Layers"))
        zip_bytes = self._zip_from(body.get("Code"))
        if self.catalog.get(account_id, ref.name, LATEST) is not None:
            raise ResourceConflictException(f"Function already exist: {ref.name}")
        info = await asyncio.to_thread(self.code.put, zip_bytes)
        try:
            check_total_unzipped(info.unzipped_size, layers)
        except InvalidParameterValueException:
            await self._collect_code(info.sha256_hex)
            raise
        logging_config = body.get("LoggingConfig") or {}
        config = FunctionConfig(
            account_id=account_id,
            name=ref.name,
            runtime=body["Runtime"],
            role=role,  # type: ignore[arg-type]
            handler=body["Handler"],
            code_sha256=info.sha256_b64,
            code_size=info.size,
            last_modified=format_lambda_timestamp(time.time()),
            revision_id=ids.revision_id(),
            description=body.get("Description") or "",
            timeout=body.get("Timeout") or 3,
            memory_size=body.get("MemorySize") or 128,
            ephemeral_storage=(body.get("EphemeralStorage") or {}).get("Size") or 512,
            environment=variables,
            architectures=architectures or ("x86_64",),
            tracing_mode=(body.get("TracingConfig") or {}).get("Mode") or "PassThrough",
            log_format=logging_config.get("LogFormat") or "Text",
            log_group=logging_config.get("LogGroup"),
            application_log_level=logging_config.get("ApplicationLogLevel"),
            system_log_level=logging_config.get("SystemLogLevel"),
            dead_letter_target=(body.get("DeadLetterConfig") or {}).get("TargetArn"),
            kms_key_arn=body.get("KMSKeyArn"),
            snap_start_apply_on=(body.get("SnapStart") or {}).get("ApplyOn") or "None",
            extra=self._extra(body),
            layers=tuple(layer.to_dict() for layer in layers),
        )
        async with self.lock(account_id, ref.name):
            await self.catalog.create(config)
            self.settle_later(config)
            if body.get("Publish"):
                return await self.publisher(config, None)
        return config

    async def update_code(self, account_id: str, ref: FunctionRef, body: Mapping[str, Any]) -> FunctionConfig:
        if ref.qualifier not in (None, LATEST):
            raise InvalidParameterValueException("Only $LATEST can be updated; versions are immutable.")
        if body.get("S3Bucket") or body.get("S3Key") or body.get("ImageUri"):
            raise NotImplementedException(
                "Code from S3 or a container image is not supported by Shoal yet; send ZipFile."
            )
        p = v.Problems()
        architectures = v.check_architectures(p, body.get("Architectures"))
        p.raise_if_any()
        zip_bytes = self._zip_from({"ZipFile": body.get("ZipFile")})
        async with self.lock(account_id, ref.name):
            current = self._updatable(account_id, ref, body.get("RevisionId"))
            info = await asyncio.to_thread(self.code.put, zip_bytes)
            check_total_unzipped(info.unzipped_size, [ResolvedLayer.from_dict(d) for d in current.layers])
            if body.get("DryRun"):
                return current.evolve(code_sha256=info.sha256_b64, code_size=info.size)
            config = current.evolve(
                code_sha256=info.sha256_b64,
                code_size=info.size,
                architectures=architectures or current.architectures,
                **self._in_progress(),
            )
            await self.catalog.put(config, expected_revision=current.revision_id)
            self.settle_later(config, old_code=current.code_key)
            if body.get("Publish"):
                return await self.publisher(config, None)
        return config

    async def update_configuration(
        self, account_id: str, ref: FunctionRef, body: Mapping[str, Any]
    ) -> FunctionConfig:
        if ref.qualifier not in (None, LATEST):
            raise InvalidParameterValueException("Only $LATEST can be updated; versions are immutable.")
        p = v.Problems()
        v.check_common(p, body)
        variables = v.check_environment(p, body.get("Environment"))
        p.raise_if_any()
        self._refuse_unsupported(body, create=False)
        if body.get("Runtime"):
            self.runtimes.require(body["Runtime"])
        async with self.lock(account_id, ref.name):
            current = self._updatable(account_id, ref, body.get("RevisionId"))
            changes: dict[str, Any] = {}
            simple = {
                "Role": "role",
                "Handler": "handler",
                "Description": "description",
                "Timeout": "timeout",
                "MemorySize": "memory_size",
                "Runtime": "runtime",
                "KMSKeyArn": "kms_key_arn",
            }
            for member, attr in simple.items():
                if body.get(member) is not None:
                    changes[attr] = body[member]
            if "Environment" in body:
                changes["environment"] = variables or {}
            if body.get("EphemeralStorage"):
                changes["ephemeral_storage"] = body["EphemeralStorage"]["Size"]
            if body.get("TracingConfig"):
                changes["tracing_mode"] = body["TracingConfig"].get("Mode") or current.tracing_mode
            if body.get("DeadLetterConfig") is not None:
                changes["dead_letter_target"] = body["DeadLetterConfig"].get("TargetArn") or None
            if body.get("SnapStart"):
                changes["snap_start_apply_on"] = body["SnapStart"].get("ApplyOn") or "None"
            lc = body.get("LoggingConfig")
            if lc:
                changes.update(
                    log_format=lc.get("LogFormat") or current.log_format,
                    log_group=lc.get("LogGroup", current.log_group),
                    application_log_level=lc.get("ApplicationLogLevel", current.application_log_level),
                    system_log_level=lc.get("SystemLogLevel", current.system_log_level),
                )
            if "Layers" in body:
                already = {layer["Arn"] for layer in current.layers}
                layers = await self._resolve_layers(account_id, body["Layers"] or [], already)
                unzipped = await asyncio.to_thread(self._unzipped_size, current.code_key)
                check_total_unzipped(unzipped, layers)
                changes["layers"] = tuple(layer.to_dict() for layer in layers)
            v.check_snap_start(
                changes.get("snap_start_apply_on", current.snap_start_apply_on),
                changes.get("runtime", current.runtime),
            )
            extra = {**current.extra, **self._extra(body)}
            config = current.evolve(extra=extra, **changes, **self._in_progress())
            await self.catalog.put(config, expected_revision=current.revision_id)
        self.settle_later(config)
        return config

    async def delete(self, account_id: str, ref: FunctionRef) -> None:
        self._check_account(account_id, ref)
        if ref.qualifier == LATEST:
            raise InvalidParameterValueException(
                "$LATEST version cannot be deleted without deleting the function."
            )
        if ref.qualifier is not None and not ref.qualifier.isdigit():
            raise InvalidParameterValueException(
                f"Deletion of aliases is not supported through DeleteFunction: use DeleteAlias to delete "
                f"{ref.qualifier}."
            )
        async with self.lock(account_id, ref.name):
            if ref.qualifier is not None:
                if self.catalog.get(account_id, ref.name, ref.qualifier) is None:
                    raise self.not_found(account_id, ref.name, ref.qualifier)
                users = [
                    a.name
                    for a in self.catalog.aliases(account_id, ref.name)
                    if ref.qualifier in (a.function_version, a.additional_version)
                ]
                if users:
                    raise ResourceConflictException(
                        "Unable to delete version because the following aliases reference it: "
                        f"[{', '.join(users)}]"
                    )
            deleted = await self.catalog.delete(account_id, ref.name, ref.qualifier)
        if not deleted:
            raise self.not_found(account_id, ref.name)
        for key in {c.code_key for c in deleted}:
            await self._collect_code(key)

    # ---- settling (Pending → Active, InProgress → Successful) -------------------------------------------

    def resume_unsettled(self) -> int:
        """At start-up: settle what a previous run acknowledged but did not finish."""
        n = 0
        for config in self.catalog.all():
            if config.state is State.PENDING or config.last_update_status is UpdateStatus.IN_PROGRESS:
                self.settle_later(config)
                n += 1
        return n

    def settle_later(self, config: FunctionConfig, old_code: str | None = None) -> None:
        self.supervisor.spawn(self._settle(config, old_code), f"settle-{config.name}")

    async def _settle(self, config: FunctionConfig, old_code: str | None) -> None:
        failure: str | None = None
        try:
            await asyncio.to_thread(self.code.task_root, config.code_key)
            if self.layers is not None and config.layers:
                await asyncio.to_thread(
                    self.layers.opt_tree, [ResolvedLayer.from_dict(d) for d in config.layers]
                )
        except ShoalError as exc:
            failure = str(exc)
        except OSError as exc:
            failure = f"The code package could not be unpacked: {exc}"
        async with self.lock(config.account_id, config.name):
            current = self.catalog.get(config.account_id, config.name, config.version)
            if current is None or current.revision_id != config.revision_id:
                return  # changed or deleted meanwhile: the newer change settles itself
            if current.state is State.PENDING:
                settled = current.evolve(
                    state=State.FAILED if failure else State.ACTIVE,
                    state_reason=failure,
                    state_reason_code="InvalidZipFileException" if failure else None,
                )
            else:
                settled = current.evolve(
                    last_update_status=UpdateStatus.FAILED if failure else UpdateStatus.SUCCESSFUL,
                    last_update_status_reason=failure,
                    last_update_status_reason_code="InvalidZipFileException" if failure else None,
                )
            await self.catalog.put(
                settled.evolve(revision_id=ids.revision_id()), expected_revision=current.revision_id
            )
        if old_code and old_code != config.code_key:
            await self._collect_code(old_code)

    async def _collect_code(self, code_key: str) -> None:
        in_use = await asyncio.to_thread(self.catalog.store.code_in_use, code_key)
        if not in_use and self.layers is not None:
            in_use = await asyncio.to_thread(self.layers.code_in_use, code_key)
        if not in_use:
            await asyncio.to_thread(self.code.delete, code_key)

    # ---- helpers --------------------------------------------------------------------------------------

    def _check_account(self, account_id: str, ref: FunctionRef) -> None:
        """Another account's function may be named by ARN, but not managed (resource policies cover
        invocation, which the invoke route checks)."""
        if ref.account_id is not None and ref.account_id != account_id:
            raise AccessDeniedException.not_authorized(
                account_id,
                "lambda:GetFunction",
                function_arn(self.region, ref.account_id, ref.name, ref.qualifier),
            )

    def _updatable(self, account_id: str, ref: FunctionRef, revision_id: object) -> FunctionConfig:
        current = self.get(account_id, FunctionRef(ref.name, ref.account_id))
        if revision_id is not None and revision_id != current.revision_id:
            raise PreconditionFailedException(
                "The Revision Id provided does not match the latest Revision Id. "
                "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
            )
        if current.state is State.PENDING:
            raise _conflict_pending()
        if current.last_update_status is UpdateStatus.IN_PROGRESS:
            raise ResourceConflictException(
                "The operation cannot be performed at this time. An update is in progress for resource: "
                f"{self.arn(current)}"
            )
        return current

    @staticmethod
    def _in_progress() -> dict[str, Any]:
        return {
            "last_modified": format_lambda_timestamp(time.time()),
            "revision_id": ids.revision_id(),
            "last_update_status": UpdateStatus.IN_PROGRESS,
            "last_update_status_reason": "The function is being created.",
            "last_update_status_reason_code": "Creating",
        }

    @staticmethod
    def _zip_from(code: object) -> bytes:
        if not isinstance(code, dict):
            raise InvalidParameterValueException("Code must be an object with ZipFile.")
        if code.get("S3Bucket") or code.get("S3Key") or code.get("ImageUri"):
            raise NotImplementedException(
                "Code from S3 or a container image is not supported by Shoal yet; send Code.ZipFile."
            )
        return v.decode_zip_file(
            code.get("ZipFile"), "Code.ZipFile", "Please provide a source for function code."
        )

    async def _resolve_layers(
        self, account_id: str, arns: object, already: set[str] | None = None
    ) -> Sequence[ResolvedLayer]:
        if self.layers is None:
            if arns:
                raise NotImplementedException("Layers are not supported by Shoal yet.")
            return []
        return await asyncio.to_thread(self.layers.resolve, account_id, arns, already=already or set())

    def _unzipped_size(self, code_key: str) -> int:
        assert self.layers is not None
        return self.layers.package_unzipped_size(code_key)

    @staticmethod
    def _refuse_unsupported(body: Mapping[str, Any], *, create: bool) -> None:
        if body.get("FileSystemConfigs"):
            raise NotImplementedException("FileSystemConfigs (EFS) are not supported by Shoal.")
        if body.get("CodeSigningConfigArn"):
            raise NotImplementedException("Code signing is not supported by Shoal yet.")

    @staticmethod
    def _extra(body: Mapping[str, Any]) -> dict[str, Any]:
        """Members Shoal stores and echoes but does not act on (yet)."""
        keep = ("VpcConfig", "ImageConfig", "Tags")
        return {k: body[k] for k in keep if body.get(k) is not None}

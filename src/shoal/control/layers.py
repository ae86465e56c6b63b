"""Layer use-cases: publish, read, list, delete, permissions; and what functions need from layers.

A layer version is a ZIP stored in the same content-addressed code store as function code (so the hostile-ZIP
checks, the download URLs and the extracted read-only trees are shared). For functions this module offers:

* :meth:`LayerService.resolve` — validate a function's ``Layers`` parameter (at most 5 version ARNs, existing,
  one version per layer) into :class:`ResolvedLayer` records, in order;
* :func:`check_total_unzipped` — the 250 MB limit on function code and layers together;
* :meth:`LayerService.opt_tree` — the merged, read-only directory that becomes the function's ``/opt``: the
  layers' trees in order, a later layer's file replacing an earlier one at the same path.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import time
import zipfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from shoal.control import validation as v
from shoal.control.paging import LIST_PAGE
from shoal.core.clock import format_lambda_timestamp
from shoal.core.errors import (
    AccessDeniedException,
    InvalidParameterValueException,
    NotImplementedException,
    ResourceNotFoundException,
    ShoalError,
    ValidationException,
)
from shoal.store.layers import (
    LayerStatement,
    LayerVersionMissing,
    LayerVersionRecord,
    NewLayerVersion,
    OptTrees,
    SqlLayerStore,
    StatementMissing,
    tree_bytes,
)
from shoal.store.packages import MAX_UNZIPPED, PackageInfo

MAX_LAYERS = 5
ARCHITECTURES = ("x86_64", "arm64")
POLICY_ACTION = "lambda:GetLayerVersion"

LAYER_NAME_PATTERN = r"(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+"
FUNCTION_LAYERS_PATTERN = (
    r"(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)"
    r"|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"
)
BY_ARN_PATTERN = (
    r"arn:(aws[a-zA-Z-]*)?:lambda:[a-z]{2}((-gov)|(-iso(b?)))?-[a-z]+-\d{1}:\d{12}:"
    r"layer:[a-zA-Z0-9-_]+:[0-9]+"
)
STATEMENT_ID_PATTERN = r"([a-zA-Z0-9-_]+)"
PRINCIPAL_PATTERN = r"\d{12}|\*|arn:(aws[a-zA-Z-]*):iam::\d{12}:root"
ORGANIZATION_ID_PATTERN = r"o-[a-z0-9]{10,32}"

_LAYER_NAME_RE = re.compile(LAYER_NAME_PATTERN)
_FUNCTION_LAYERS_RE = re.compile(FUNCTION_LAYERS_PATTERN)
_BY_ARN_RE = re.compile(BY_ARN_PATTERN)
_ARN_RE = re.compile(
    r"arn:(?P<partition>[a-zA-Z0-9-]+):lambda:(?P<region>[a-zA-Z0-9-]+):(?P<account>\d{12}):layer:"
    r"(?P<name>[a-zA-Z0-9-_]+)(:(?P<version>[0-9]+))?"
)
_STATEMENT_ID_RE = re.compile(STATEMENT_ID_PATTERN)
_PRINCIPAL_RE = re.compile(PRINCIPAL_PATTERN)
_ORGANIZATION_ID_RE = re.compile(ORGANIZATION_ID_PATTERN)
_ACCOUNT_RE = re.compile(r"\d{12}")

NOT_FOUND = "The resource you requested does not exist."
NO_POLICY = "No policy is associated with the given resource."


def layer_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{account_id}:layer:{name}"


def layer_version_arn(region: str, account_id: str, name: str, version: int) -> str:
    return f"{layer_arn(region, account_id, name)}:{version}"


class LayerCodeStore(Protocol):
    """What layers need of the code store (``FileCodeStore``)."""

    def put(self, data: bytes) -> PackageInfo: ...
    def task_root(self, sha256_hex: str) -> Path: ...
    def zip_path(self, sha256_hex: str) -> Path: ...
    def delete(self, sha256_hex: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ResolvedLayer:
    """One entry of a function's ``Layers``, as resolved when the function was created or updated."""

    arn: str  # the layer version ARN
    code_size: int  # zip bytes (FunctionConfiguration.Layers[].CodeSize)
    sha_hex: str  # the zip's SHA-256: the key of its tree in the code store
    unzipped_size: int = 0  # bytes it occupies under /opt (for the 250 MB limit)

    def configuration(self) -> dict[str, Any]:
        """The ``FunctionConfiguration.Layers`` item: ``{"Arn", "CodeSize"}``."""
        return {"Arn": self.arn, "CodeSize": self.code_size}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form, to keep in a stored function configuration."""
        return {
            "Arn": self.arn,
            "CodeSize": self.code_size,
            "CodeSha256Hex": self.sha_hex,
            "UnzippedSize": self.unzipped_size,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResolvedLayer:
        return cls(
            str(data["Arn"]),
            int(data["CodeSize"]),
            str(data["CodeSha256Hex"]),
            int(data.get("UnzippedSize", 0)),
        )


@dataclass(frozen=True, slots=True)
class LayerPage:
    items: list[LayerVersionRecord]
    next_marker: str | None


@dataclass(frozen=True, slots=True)
class _Ref:
    account_id: str
    name: str


def check_total_unzipped(function_unzipped: int, layers: Sequence[ResolvedLayer]) -> None:
    """Function code and its layers may occupy at most 262144000 bytes unzipped (spec §11)."""
    in_layers = sum(layer.unzipped_size for layer in layers)
    if in_layers > MAX_UNZIPPED:
        raise InvalidParameterValueException(
            f"Layers consume more than the available size of {MAX_UNZIPPED} bytes"
        )
    total = function_unzipped + in_layers
    if total > MAX_UNZIPPED:
        raise InvalidParameterValueException(
            f"Function code combined with layers exceeds the maximum allowed size of {MAX_UNZIPPED} bytes. "
            f"The actual size is {total} bytes."
        )


def statement_document(statement: LayerStatement, resource_arn: str) -> dict[str, Any]:
    """A policy statement as AWS renders it (``Principal`` an account → ``{"AWS": "…:root"}``)."""
    principal: object = statement.principal
    if _ACCOUNT_RE.fullmatch(statement.principal):
        principal = {"AWS": f"arn:aws:iam::{statement.principal}:root"}
    elif statement.principal != "*":
        principal = {"AWS": statement.principal}
    out: dict[str, Any] = {
        "Sid": statement.statement_id,
        "Effect": "Allow",
        "Principal": principal,
        "Action": statement.action,
        "Resource": resource_arn,
    }
    if statement.organization_id:
        out["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": statement.organization_id}}
    return out


def _shown_list(items: Sequence[object]) -> str:
    return "[" + ", ".join(str(i) for i in items) + "]"


def _str_list(value: object, member: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise InvalidParameterValueException(f"{member} must be a list of strings.")
    return value


def _version_number(value: object) -> int:
    text = str(value)
    if not re.fullmatch(r"-?\d{1,19}", text):
        raise ValidationException.of(
            [f"Value '{text}' at 'versionNumber' failed to satisfy constraint: Member must be a number"]
        )
    number = int(text)
    if number < 1:
        raise InvalidParameterValueException("Layer Version Cannot be less than 1")
    return number


def _encode_marker(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def _decode_marker(marker: str | None) -> str | None:
    if not marker:
        return None
    try:
        return base64.urlsafe_b64decode(marker.encode()).decode()
    except (ValueError, binascii.Error):
        raise InvalidParameterValueException(f"Invalid Marker: {marker}") from None


def _page_size(max_items: object) -> int:
    if max_items is None or max_items == "":
        return LIST_PAGE
    text = str(max_items)
    if not re.fullmatch(r"-?\d{1,9}", text):
        raise ValidationException.of(
            [f"Value '{text}' at 'maxItems' failed to satisfy constraint: Member must be a number"]
        )
    n = int(text)
    if n < 1:
        raise ValidationException.of(
            [
                f"Value '{n}' at 'maxItems' failed to satisfy constraint: "
                "Member must have value greater than or equal to 1"
            ]
        )
    if n > LIST_PAGE:
        raise ValidationException.of(
            [
                f"Value '{n}' at 'maxItems' failed to satisfy constraint: "
                f"Member must have value less than or equal to {LIST_PAGE}"
            ]
        )
    return n


def _check_filters(runtime: str | None, architecture: str | None) -> None:
    p = v.Problems()
    if runtime is not None and runtime not in v.RUNTIME_ENUM:
        p.add(
            runtime, "compatibleRuntime", f"Member must satisfy enum value set: {_shown_list(v.RUNTIME_ENUM)}"
        )
    if architecture is not None and architecture not in ARCHITECTURES:
        p.add(architecture, "compatibleArchitecture", "Member must satisfy enum value set: [x86_64, arm64]")
    p.raise_if_any()


def _matches(record: LayerVersionRecord, runtime: str | None, architecture: str | None) -> bool:
    return (runtime is None or runtime in record.compatible_runtimes) and (
        architecture is None or architecture in record.compatible_architectures
    )


class LayerService:
    def __init__(
        self,
        store: SqlLayerStore,
        code: LayerCodeStore,
        region: str,
        opt_root: Path,
        *,
        function_code_in_use: Callable[[str], bool] | None = None,
        max_unzipped: int = MAX_UNZIPPED,
    ) -> None:
        self.store = store
        self.code = code
        self.region = region
        self.trees = OptTrees(opt_root, code.task_root, max_unzipped=max_unzipped)
        self.function_code_in_use = function_code_in_use

    def version_arn(self, record: LayerVersionRecord) -> str:
        return layer_version_arn(self.region, record.account_id, record.name, record.version)

    def layer_arn(self, record: LayerVersionRecord) -> str:
        return layer_arn(self.region, record.account_id, record.name)

    # ---- publish --------------------------------------------------------------------------------------

    async def publish(self, account_id: str, layer_name: str, body: Mapping[str, Any]) -> LayerVersionRecord:
        p = v.Problems()
        self._check_layer_name(p, layer_name)
        content = body.get("Content")
        if content is None:
            p.add(None, "content", "Member must not be null")
        description = body.get("Description")
        if description is not None:
            description = v._str(description, "Description")
            if len(description) > 256:
                p.add(description, "description", "Member must have length less than or equal to 256")
        license_info = body.get("LicenseInfo")
        if license_info is not None:
            license_info = v._str(license_info, "LicenseInfo")
            if len(license_info) > 512:
                p.add(license_info, "licenseInfo", "Member must have length less than or equal to 512")
        runtimes = _str_list(body.get("CompatibleRuntimes"), "CompatibleRuntimes")
        if len(runtimes) > 15:
            p.add(
                _shown_list(runtimes),
                "compatibleRuntimes",
                "Member must have length less than or equal to 15",
            )
        elif any(r not in v.RUNTIME_ENUM for r in runtimes):
            p.add(
                _shown_list(runtimes),
                "compatibleRuntimes",
                "Member must satisfy constraint: "
                f"[Member must satisfy enum value set: {_shown_list(v.RUNTIME_ENUM)}]",
            )
        architectures = _str_list(body.get("CompatibleArchitectures"), "CompatibleArchitectures")
        if len(architectures) > 2:
            p.add(
                _shown_list(architectures),
                "compatibleArchitectures",
                "Member must have length less than or equal to 2",
            )
        elif any(a not in ARCHITECTURES for a in architectures):
            p.add(
                _shown_list(architectures),
                "compatibleArchitectures",
                "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]",
            )
        p.raise_if_any()
        ref = self._ref(account_id, layer_name)
        if ref is None:
            raise InvalidParameterValueException(
                f"Layers can only be published in this region ({self.region}): {layer_name}"
            )
        self._own(
            account_id, ref, "lambda:PublishLayerVersion", layer_arn(self.region, ref.account_id, ref.name)
        )
        data = self._zip_from(content)
        info = await asyncio.to_thread(self.code.put, data)
        try:
            tree = await asyncio.to_thread(self.code.task_root, info.sha256_hex)
            real = await asyncio.to_thread(tree_bytes, tree)
        except (ShoalError, OSError):
            await asyncio.to_thread(self._forget_zip, info.sha256_hex)
            raise
        new = NewLayerVersion(
            description=description or "",
            compatible_runtimes=tuple(runtimes),
            compatible_architectures=tuple(architectures),
            license_info=license_info,
            created_date=format_lambda_timestamp(time.time()),
            code_sha256_hex=info.sha256_hex,
            code_sha256=info.sha256_b64,
            code_size=info.size,
            unzipped_size=max(info.unzipped_size, real),
        )
        return await asyncio.to_thread(self.store.publish, ref.account_id, ref.name, new)

    @staticmethod
    def _zip_from(content: object) -> bytes:
        if not isinstance(content, dict):
            raise InvalidParameterValueException("Content must be an object with ZipFile.")
        if content.get("S3Bucket") or content.get("S3Key") or content.get("S3ObjectVersion"):
            raise NotImplementedException(
                "Layer content from S3 (Content.S3Bucket, Content.S3Key) is not supported by Shoal yet; "
                "send Content.ZipFile."
            )
        return v.decode_zip_file(content.get("ZipFile"), "Content.ZipFile", "Missing Content")

    def _forget_zip(self, sha256_hex: str) -> None:
        """After a refused publish: remove the stored zip unless a layer or a function holds it."""
        if self.store.code_in_use(sha256_hex) or self.function_code_in_use is None:
            return
        if not self.function_code_in_use(sha256_hex):
            self.code.delete(sha256_hex)

    # ---- reads ----------------------------------------------------------------------------------------

    async def get(self, account_id: str, layer_name: str, version_number: object) -> LayerVersionRecord:
        self._check_layer_name(None, layer_name)
        number = _version_number(version_number)
        ref = self._ref(account_id, layer_name)
        if ref is None:
            raise ResourceNotFoundException(NOT_FOUND)
        return await asyncio.to_thread(self._readable, account_id, ref.account_id, ref.name, number)

    async def get_by_arn(self, account_id: str, arn: str | None) -> LayerVersionRecord:
        if arn is None:
            raise ValidationException.of(
                ["Value null at 'arn' failed to satisfy constraint: Member must not be null"]
            )
        if len(arn) > 140 or not _BY_ARN_RE.fullmatch(arn):
            constraint = (
                "Member must have length less than or equal to 140"
                if len(arn) > 140
                else f"Member must satisfy regular expression pattern: {BY_ARN_PATTERN}"
            )
            raise ValidationException.of(
                [f"Value '{arn}' at 'arn' failed to satisfy constraint: {constraint}"]
            )
        m = _ARN_RE.fullmatch(arn)
        assert m is not None and m["version"] is not None
        if m["region"] != self.region:
            raise ResourceNotFoundException(NOT_FOUND)
        return await asyncio.to_thread(self._readable, account_id, m["account"], m["name"], int(m["version"]))

    async def list_layers(
        self,
        account_id: str,
        runtime: str | None = None,
        architecture: str | None = None,
        marker: str | None = None,
        max_items: object = None,
    ) -> LayerPage:
        """Each layer with its newest version that matches the filters (``LatestMatchingVersion``)."""
        _check_filters(runtime, architecture)
        size = _page_size(max_items)
        after = _decode_marker(marker)
        latest: dict[str, LayerVersionRecord] = {}
        for record in await asyncio.to_thread(self.store.versions, account_id):  # by name, newest first
            if record.name not in latest and _matches(record, runtime, architecture):
                latest[record.name] = record
        names = sorted(n for n in latest if after is None or n > after)
        chunk = names[:size]
        nxt = _encode_marker(chunk[-1]) if len(names) > size else None
        return LayerPage([latest[n] for n in chunk], nxt)

    async def list_versions(
        self,
        account_id: str,
        layer_name: str,
        runtime: str | None = None,
        architecture: str | None = None,
        marker: str | None = None,
        max_items: object = None,
    ) -> LayerPage:
        """The versions of one layer that match the filters, newest first. A layer that does not exist has
        none (no error, as on AWS)."""
        self._check_layer_name(None, layer_name)
        _check_filters(runtime, architecture)
        size = _page_size(max_items)
        after = _decode_marker(marker)
        if after is not None and not after.isdigit():
            raise InvalidParameterValueException(f"Invalid Marker: {marker}")
        ref = self._ref(account_id, layer_name)
        if ref is not None:
            self._own(
                account_id, ref, "lambda:ListLayerVersions", layer_arn(self.region, ref.account_id, ref.name)
            )
        records = (
            [] if ref is None else await asyncio.to_thread(self.store.versions, ref.account_id, ref.name)
        )
        matching = [
            r
            for r in records
            if _matches(r, runtime, architecture) and (after is None or r.version < int(after))
        ]
        chunk = matching[:size]
        nxt = _encode_marker(str(chunk[-1].version)) if len(matching) > size else None
        return LayerPage(chunk, nxt)

    # ---- delete ---------------------------------------------------------------------------------------

    async def delete(self, account_id: str, layer_name: str, version_number: object) -> None:
        """Delete a version. Idempotent: a version that does not exist (or was deleted) is not an error.
        The version stays usable by functions that reference it, and its number is never given out again."""
        self._check_layer_name(None, layer_name)
        number = _version_number(version_number)
        ref = self._ref(account_id, layer_name)
        if ref is not None:
            self._own(account_id, ref, "lambda:DeleteLayerVersion", self._arn_of(ref, number))
            await asyncio.to_thread(self.store.delete, ref.account_id, ref.name, number)

    # ---- permissions ----------------------------------------------------------------------------------

    async def add_permission(
        self,
        account_id: str,
        layer_name: str,
        version_number: object,
        body: Mapping[str, Any],
        revision_id: str | None = None,
    ) -> tuple[dict[str, Any], str]:
        """Add a statement; returns (the statement as AWS renders it, the policy's new RevisionId)."""
        p = v.Problems()
        self._check_layer_name(p, layer_name)
        sid = body.get("StatementId")
        self._check_statement_id(p, sid)
        action = body.get("Action")
        if action is None:
            p.add(None, "action", "Member must not be null")
        else:
            action = v._str(action, "Action")
            if len(action) > 22:
                p.add(action, "action", "Member must have length less than or equal to 22")
            elif action != POLICY_ACTION:
                p.add(action, "action", f"Member must satisfy regular expression pattern: {POLICY_ACTION}")
        principal = body.get("Principal")
        if principal is None:
            p.add(None, "principal", "Member must not be null")
        elif not _PRINCIPAL_RE.fullmatch(v._str(principal, "Principal")):
            p.add(
                principal, "principal", f"Member must satisfy regular expression pattern: {PRINCIPAL_PATTERN}"
            )
        organization = body.get("OrganizationId")
        if organization is not None:
            organization = v._str(organization, "OrganizationId")
            if len(organization) > 34:
                p.add(organization, "organizationId", "Member must have length less than or equal to 34")
            elif not _ORGANIZATION_ID_RE.fullmatch(organization):
                p.add(
                    organization,
                    "organizationId",
                    f"Member must satisfy regular expression pattern: {ORGANIZATION_ID_PATTERN}",
                )
        p.raise_if_any()
        number = _version_number(version_number)
        ref = self._existing_ref(account_id, layer_name, number, "lambda:AddLayerVersionPermission")
        statement = LayerStatement(str(sid), str(action), str(principal), organization or None)
        try:
            policy = await asyncio.to_thread(
                self.store.add_statement, ref.account_id, ref.name, number, statement, revision_id or None
            )
        except LayerVersionMissing:
            raise self._version_missing(ref, number) from None
        resource = layer_version_arn(self.region, ref.account_id, ref.name, number)
        return statement_document(statement, resource), policy.revision_id

    async def get_policy(
        self, account_id: str, layer_name: str, version_number: object
    ) -> tuple[dict[str, Any], str]:
        """(the policy document, its RevisionId)."""
        self._check_layer_name(None, layer_name)
        number = _version_number(version_number)
        ref = self._existing_ref(account_id, layer_name, number, "lambda:GetLayerVersionPolicy")
        try:
            policy = await asyncio.to_thread(self.store.policy, ref.account_id, ref.name, number)
        except LayerVersionMissing:
            raise self._version_missing(ref, number) from None
        if policy is None:
            raise ResourceNotFoundException(NO_POLICY)
        resource = layer_version_arn(self.region, ref.account_id, ref.name, number)
        document = {
            "Version": "2012-10-17",
            "Id": "default",
            "Statement": [statement_document(s, resource) for s in policy.statements],
        }
        return document, policy.revision_id

    async def remove_permission(
        self,
        account_id: str,
        layer_name: str,
        version_number: object,
        statement_id: str,
        revision_id: str | None = None,
    ) -> None:
        p = v.Problems()
        self._check_layer_name(p, layer_name)
        self._check_statement_id(p, statement_id)
        p.raise_if_any()
        number = _version_number(version_number)
        ref = self._existing_ref(account_id, layer_name, number, "lambda:RemoveLayerVersionPermission")
        try:
            await asyncio.to_thread(
                self.store.remove_statement,
                ref.account_id,
                ref.name,
                number,
                statement_id,
                revision_id or None,
            )
        except LayerVersionMissing:
            raise self._version_missing(ref, number) from None
        except StatementMissing:
            raise ResourceNotFoundException(
                f"Statement {statement_id} is not found in resource policy."
            ) from None

    # ---- for functions --------------------------------------------------------------------------------

    def resolve(self, account_id: str, arns: object, *, already: Collection[str] = ()) -> list[ResolvedLayer]:
        """Validate a function's ``Layers`` parameter and resolve it, in order (blocking: a few reads).

        ``already``: the layer version ARNs the function references now. A deleted version stays usable by
        functions that already reference it (as on AWS), so an update that keeps it passes; a new reference
        to a deleted version is refused like a version that never existed. Another account's version needs
        a statement in its policy that grants this account (AccessDeniedException otherwise).
        """
        if arns is None:
            return []
        if not isinstance(arns, list) or not all(isinstance(a, str) for a in arns):
            raise InvalidParameterValueException("Layers must be a list of layer version ARNs.")
        if len(arns) > MAX_LAYERS:
            raise InvalidParameterValueException(f"Cannot reference more than {MAX_LAYERS} layers.")
        if any(not 1 <= len(a) <= 140 or not _FUNCTION_LAYERS_RE.fullmatch(a) for a in arns):
            raise ValidationException.of(
                [
                    f"Value '{_shown_list(arns)}' at 'layers' failed to satisfy constraint: "
                    "Member must satisfy constraint: [Member must have length less than or equal to 140, "
                    "Member must have length greater than or equal to 1, "
                    "Member must satisfy regular expression pattern: "
                    f"{FUNCTION_LAYERS_PATTERN}, Member must not be null]"
                ]
            )
        kept = set(already)
        seen: dict[tuple[str, str], str] = {}
        out: list[ResolvedLayer] = []
        for arn in arns:
            m = _ARN_RE.fullmatch(arn)
            if m is None or m["version"] is None:  # an AWS-managed "awslayer": none exist here
                raise InvalidParameterValueException(f"Layer version {arn} does not exist.")
            if m["region"] != self.region:
                raise InvalidParameterValueException(
                    "Layers are not in the same region as the function. "
                    f"Layers are expected to be in region {self.region}."
                )
            account, name, number = m["account"], m["name"], int(m["version"])
            canonical = layer_version_arn(self.region, account, name, number)
            record = self.store.get(account, name, number, include_deleted=True)
            referenced = arn in kept or canonical in kept
            if record is not None and record.deleted and not referenced:
                record = None
            if account != account_id and not referenced:
                if record is None or not self.granted(account_id, account, name, number):
                    raise AccessDeniedException.not_authorized(account_id, "lambda:GetLayerVersion", arn)
            if record is None:
                raise InvalidParameterValueException(f"Layer version {arn} does not exist.")
            if (account, name) in seen:
                raise InvalidParameterValueException(
                    "Two different versions of the same layer are not allowed to be referenced in the same "
                    f"function. {seen[(account, name)]} and {arn} are versions of the same layer."
                )
            seen[(account, name)] = arn
            out.append(
                ResolvedLayer(canonical, record.code_size, record.code_sha256_hex, record.unzipped_size)
            )
        return out

    def opt_tree(self, layers: Sequence[ResolvedLayer]) -> Path | None:
        """The directory to bind read-only at ``/opt`` for these layers (blocking; None for no layers).

        The layers are laid over each other in order: a later layer's file or link replaces an earlier entry
        at the same path, directories merge. Built once per ordered list of zips, in a staging directory
        renamed into place, read-only afterwards. A single layer's /opt is its own extracted tree. Refuses
        (InvalidParameterValueException) layers whose real unzipped bytes together exceed the limit.
        """
        if not layers:
            return None
        return self.trees.build([layer.sha_hex for layer in layers])

    def package_unzipped_size(self, sha256_hex: str) -> int:
        """The unzipped size a stored package declares (a function's share of the 250 MB limit)."""
        with zipfile.ZipFile(self.code.zip_path(sha256_hex)) as zf:
            return sum(info.file_size for info in zf.infolist())

    def code_in_use(self, sha256_hex: str) -> bool:
        """Whether a layer version (deleted ones included) holds this zip: the code store must keep it."""
        return self.store.code_in_use(sha256_hex)

    # ---- helpers --------------------------------------------------------------------------------------

    def _check_layer_name(self, p: v.Problems | None, value: object) -> None:
        name = v._str(value, "LayerName")
        constraint = None
        if not 1 <= len(name) <= 140:
            constraint = (
                "Member must have length less than or equal to 140"
                if name
                else "Member must have length greater than or equal to 1"
            )
        elif not _LAYER_NAME_RE.fullmatch(name):
            constraint = f"Member must satisfy regular expression pattern: {LAYER_NAME_PATTERN}"
        if constraint is None:
            return
        problems = p if p is not None else v.Problems()
        problems.add(name, "layerName", constraint)
        if p is None:
            problems.raise_if_any()

    @staticmethod
    def _check_statement_id(p: v.Problems, value: object) -> None:
        if value is None:
            p.add(None, "statementId", "Member must not be null")
            return
        sid = v._str(value, "StatementId")
        if not 1 <= len(sid) <= 100:
            p.add(
                sid,
                "statementId",
                "Member must have length less than or equal to 100"
                if sid
                else "Member must have length greater than or equal to 1",
            )
        elif not _STATEMENT_ID_RE.fullmatch(sid):
            p.add(
                sid, "statementId", f"Member must satisfy regular expression pattern: {STATEMENT_ID_PATTERN}"
            )

    def _ref(self, account_id: str, layer_name: str) -> _Ref | None:
        """The layer a (validated) LayerName names; None when its ARN is in another region."""
        m = _ARN_RE.fullmatch(layer_name)
        if m is None:
            return _Ref(account_id, layer_name)
        if m["region"] != self.region:
            return None
        return _Ref(m["account"], m["name"])

    def _existing_ref(self, account_id: str, layer_name: str, number: int, action: str) -> _Ref:
        ref = self._ref(account_id, layer_name)
        if ref is None:
            m = _ARN_RE.fullmatch(layer_name)
            assert m is not None
            raise ResourceNotFoundException(
                f"Layer version {layer_arn(m['region'], m['account'], m['name'])}:{number} does not exist."
            )
        self._own(account_id, ref, action, self._arn_of(ref, number))
        return ref

    def _arn_of(self, ref: _Ref, number: int) -> str:
        return layer_version_arn(self.region, ref.account_id, ref.name, number)

    @staticmethod
    def _own(caller: str, ref: _Ref, action: str, resource: str) -> None:
        """Only the owning account manages a layer (a layer policy grants others GetLayerVersion only)."""
        if ref.account_id != caller:
            raise AccessDeniedException.not_authorized(caller, action, resource)

    def _readable(self, caller: str, account_id: str, name: str, number: int) -> LayerVersionRecord:
        """A version the caller may read (GetLayerVersion): its own, or another account's that grants it.
        Another account's version that does not exist is refused like one that is not granted (as on AWS)."""
        record = self.store.get(account_id, name, number)
        if account_id == caller:
            if record is None:
                raise ResourceNotFoundException(NOT_FOUND)
            return record
        if record is None or not self.granted(caller, account_id, name, number):
            raise AccessDeniedException.not_authorized(
                caller, "lambda:GetLayerVersion", layer_version_arn(self.region, account_id, name, number)
            )
        return record

    def granted(self, caller: str, account_id: str, name: str, number: int) -> bool:
        """Whether the version's policy lets ``caller`` (another account) use it. A statement limited to an
        organization grants nothing here: Shoal has no organizations."""
        try:
            policy = self.store.policy(account_id, name, number)
        except LayerVersionMissing:
            return False
        if policy is None:
            return False
        for statement in policy.statements:
            if statement.organization_id:
                continue
            principal = statement.principal
            if principal in ("*", caller) or principal.endswith(f"::{caller}:root"):
                return True
        return False

    def _version_missing(self, ref: _Ref, number: int) -> ResourceNotFoundException:
        return ResourceNotFoundException(
            f"Layer version {layer_version_arn(self.region, ref.account_id, ref.name, number)} "
            "does not exist."
        )


def policy_json(document: Mapping[str, Any]) -> str:
    """AWS's compact JSON form of a statement or policy."""
    return json.dumps(document, separators=(",", ":"))

"""The core contract everything composes around: the function record and the :class:`Invoker` protocol.

``api`` and ``events`` reach running code only through an ``Invoker``; throttling, metrics and billing wrap
an ``Invoker`` the way middleware wraps an app.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from shoal.core.arns import LATEST


class InvocationType(enum.StrEnum):
    REQUEST_RESPONSE = "RequestResponse"
    EVENT = "Event"
    DRY_RUN = "DryRun"


class State(enum.StrEnum):
    PENDING = "Pending"
    ACTIVE = "Active"
    INACTIVE = "Inactive"
    FAILED = "Failed"


class UpdateStatus(enum.StrEnum):
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    IN_PROGRESS = "InProgress"


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    """One function version's configuration: what ``FunctionConfiguration`` renders (spec §1.4).

    Immutable: a change is a new value (``dataclasses.replace``) with a new ``revision_id``.
    """

    account_id: str
    name: str
    runtime: str
    role: str
    handler: str
    code_sha256: str  # base64 of the SHA-256 of the zip, as AWS shows it
    code_size: int
    last_modified: str
    revision_id: str
    version: str = LATEST
    description: str = ""
    timeout: int = 3
    memory_size: int = 128
    ephemeral_storage: int = 512
    environment: dict[str, str] | None = None
    architectures: tuple[str, ...] = ("x86_64",)
    package_type: str = "Zip"
    tracing_mode: str = "PassThrough"
    log_format: str = "Text"
    log_group: str | None = None
    application_log_level: str | None = None
    system_log_level: str | None = None
    dead_letter_target: str | None = None
    kms_key_arn: str | None = None
    snap_start_apply_on: str = "None"
    state: State = State.PENDING
    state_reason: str | None = "The function is being created."
    state_reason_code: str | None = "Creating"
    last_update_status: UpdateStatus = UpdateStatus.SUCCESSFUL
    last_update_status_reason: str | None = None
    last_update_status_reason_code: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # echoed members Shoal stores but does not act on
    last_version: int = 0  # on $LATEST: the highest version number ever published (never reused)
    reserved_concurrency: int | None = None  # on $LATEST: PutFunctionConcurrency, for the whole function
    # on $LATEST: provisioned concurrency per qualifier → {"requested": n, "last_modified": "…"}
    provisioned: dict[str, dict[str, Any]] = field(default_factory=dict)
    layers: tuple[dict[str, Any], ...] = ()  # ResolvedLayer.to_dict() of each of Layers, in order

    @property
    def code_key(self) -> str:
        """The code store key (hex SHA-256)."""
        import base64

        return base64.b64decode(self.code_sha256).hex()

    @property
    def effective_log_group(self) -> str:
        return self.log_group or f"/aws/lambda/{self.name}"

    def evolve(self, **changes: Any) -> FunctionConfig:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Alias:
    """An alias of a function: a name pointing at a version, optionally routing a share of invocations to a
    second version (spec §1.3)."""

    account_id: str
    function_name: str
    name: str
    function_version: str
    revision_id: str
    description: str = ""
    additional_version: str | None = None
    additional_weight: float = 0.0


@dataclass(frozen=True, slots=True)
class Policy:
    """A resource-based policy of one function version/alias (``qualifier`` "" = the function itself)."""

    account_id: str
    function_name: str
    qualifier: str
    statements: tuple[dict[str, Any], ...]
    revision_id: str


@dataclass(frozen=True, slots=True)
class InvokeRequest:
    """A parsed Invoke call: the API layer builds it, an :class:`Invoker` serves it."""

    account_id: str
    function_name: str
    payload: bytes
    qualifier: str | None = None
    invocation_type: InvocationType = InvocationType.REQUEST_RESPONSE
    tail_log: bool = False
    client_context: str | None = None  # decoded JSON text of X-Amz-Client-Context
    request_id: str | None = None  # pre-assigned id (async redelivery keeps its id)


@dataclass(slots=True)
class InvokeResult:
    status_code: int
    request_id: str
    payload: bytes = b""
    executed_version: str | None = None
    function_error: str | None = None  # "Unhandled" on a function error
    log_result: str | None = None  # base64 of the log tail, with LogType Tail
    content_type: str = "application/json"


class Invoker(Protocol):
    """Runs one invocation. Every route and event source goes through this, and nothing else."""

    async def invoke(self, request: InvokeRequest) -> InvokeResult: ...

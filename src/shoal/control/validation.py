"""Request validation with AWS's error types and wording (spec §1.1, §1.2, §1.6, §4.1)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

import botocore.session

from shoal.core.errors import InvalidParameterValueException, ValidationException

RUNTIME_ENUM: tuple[str, ...] = tuple(
    botocore.session.get_session().get_service_model("lambda").shape_for("Runtime").enum
)

RESERVED_ENV_KEYS = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)
_ENV_KEY_RE = re.compile(r"[a-zA-Z]([a-zA-Z0-9_])+")
_HANDLER_RE = re.compile(r"[^\s]+")
_LOG_GROUP_RE = re.compile(r"[\.\-_/#A-Za-z0-9]+")
ENV_LIMIT = 4096
MAX_MEMORY = 10240
MAX_TIMEOUT = 900
MAX_EPHEMERAL = 10240


class Problems:
    """Collects shape-constraint failures so that one ``ValidationException`` names them all, as AWS does."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, value: object, member: str, constraint: str) -> None:
        shown = "null" if value is None else f"'{value}'"
        self.items.append(f"Value {shown} at '{member}' failed to satisfy constraint: {constraint}")

    def enum(self, value: object, member: str, allowed: tuple[str, ...]) -> None:
        """``value`` (absent: None) must be one of ``allowed``."""
        if value is not None and value not in allowed:
            self.add(value, member, f"Member must satisfy enum value set: [{', '.join(allowed)}]")

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationException.of(self.items)


def _int(value: object, member: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterValueException(f"{member} must be an integer, not {json.dumps(value)}.")
    return value


def _str(value: object, member: str) -> str:
    if not isinstance(value, str):
        raise InvalidParameterValueException(f"{member} must be a string, not {json.dumps(value)}.")
    return value


def check_int_range(p: Problems, value: object, member: str, low: int, high: int) -> None:
    if value is None:
        return
    n = _int(value, member)
    if n < low:
        p.add(n, member, f"Member must have value greater than or equal to {low}")
    elif n > high:
        p.add(n, member, f"Member must have value less than or equal to {high}")


def check_common(p: Problems, body: Mapping[str, Any]) -> None:
    """Members shared by CreateFunction and UpdateFunctionConfiguration."""
    check_int_range(p, body.get("Timeout"), "timeout", 1, MAX_TIMEOUT)
    check_int_range(p, body.get("MemorySize"), "memorySize", 128, MAX_MEMORY)
    storage = body.get("EphemeralStorage")
    if storage is not None:
        if not isinstance(storage, dict) or "Size" not in storage:
            p.add(None, "ephemeralStorage.size", "Member must not be null")
        else:
            check_int_range(p, storage["Size"], "ephemeralStorage.size", 512, MAX_EPHEMERAL)
    if "Description" in body:
        description = _str(body["Description"], "Description")
        if len(description) > 256:
            p.add(description, "description", "Member must have length less than or equal to 256")
    if "Handler" in body and body["Handler"] is not None:
        handler = _str(body["Handler"], "Handler")
        if len(handler) > 128:
            p.add(handler, "handler", "Member must have length less than or equal to 128")
        elif handler and not _HANDLER_RE.fullmatch(handler):
            p.add(handler, "handler", r"Member must satisfy regular expression pattern: [^\s]+")
    if body.get("Runtime") is not None:
        p.enum(_str(body["Runtime"], "Runtime"), "runtime", RUNTIME_ENUM)
    if "Role" in body:
        from shoal.core.arns import role_is_valid

        role = _str(body["Role"], "Role")
        if not role_is_valid(role):
            p.add(
                role,
                "role",
                r"Member must satisfy regular expression pattern: "
                r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+",
            )
    snap_start = body.get("SnapStart")
    if isinstance(snap_start, dict):
        p.enum(snap_start.get("ApplyOn"), "snapStart.applyOn", ("PublishedVersions", "None"))
    tracing = body.get("TracingConfig")
    if isinstance(tracing, dict):
        p.enum(tracing.get("Mode"), "tracingConfig.mode", ("Active", "PassThrough"))
    logging_config = body.get("LoggingConfig")
    if isinstance(logging_config, dict):
        p.enum(logging_config.get("LogFormat"), "loggingConfig.logFormat", ("JSON", "Text"))
        group = logging_config.get("LogGroup")
        if group is not None and (
            not isinstance(group, str) or not _LOG_GROUP_RE.fullmatch(group) or len(group) > 512
        ):
            p.add(
                group,
                "loggingConfig.logGroup",
                r"Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+",
            )
        levels = {
            "ApplicationLogLevel": ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"),
            "SystemLogLevel": ("DEBUG", "INFO", "WARN"),
        }
        for member, allowed in levels.items():
            p.enum(logging_config.get(member), f"loggingConfig.{member[0].lower()}{member[1:]}", allowed)


def check_snap_start(apply_on: str, runtime: str) -> None:
    """SnapStart is offered for Java 11+, Python 3.12+ and .NET 8+ (AWS's list)."""
    if apply_on != "PublishedVersions":
        return
    family = runtime.rstrip("0123456789.")
    version = tuple(int(n) for n in runtime[len(family) :].split(".") if n.isdigit())
    minimum = {"java": (11,), "python": (3, 12), "dotnet": (8,)}.get(family)
    if minimum is None or version < minimum:
        raise InvalidParameterValueException(f"{runtime} is not supported for SnapStart enabled functions.")


def check_architectures(p: Problems, value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 1:
        p.add(
            value,
            "architectures",
            "Member must have length less than or equal to 1"
            if isinstance(value, list) and value
            else "Member must have length greater than or equal to 1",
        )
        return None
    if value[0] not in ("x86_64", "arm64"):
        p.add(
            value,
            "architectures",
            "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]",
        )
        return None
    return (value[0],)


def check_environment(p: Problems, environment: object) -> dict[str, str] | None:
    """Validate ``Environment``; returns the variables (``{}`` when given empty), or None when absent."""
    if environment is None:
        return None
    if not isinstance(environment, dict):
        raise InvalidParameterValueException("Environment must be an object with a Variables map.")
    variables = environment.get("Variables") or {}
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise InvalidParameterValueException("Environment.Variables must map names to string values.")
    if any(not _ENV_KEY_RE.fullmatch(k) for k in variables):
        p.items.append(
            "Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy "
            "constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]"
        )
        return None
    reserved = [k for k in variables if k in RESERVED_ENV_KEYS]
    if reserved:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment variables you "
            "have provided contains reserved keys that are currently not supported for modification. "
            f"Reserved keys used in this request: {', '.join(reserved)}"
        )
    measured = json.dumps(variables, separators=(",", ":"))
    if len(measured.encode()) > ENV_LIMIT:
        raise InvalidParameterValueException(
            "Lambda was unable to configure your environment variables because the environment variables you "
            f"have provided exceeded the 4KB limit. String measured: {measured}"
        )
    return dict(variables)


ZIP_LIMIT = 52_428_800  # a ZipFile uploaded directly (spec §11: 50 MB zipped)


def decode_zip_file(data: object, member: str, missing: str) -> bytes:
    """A ``ZipFile`` member (base64 in the JSON body) as bytes, or the error AWS gives for it."""
    if not data:
        raise InvalidParameterValueException(missing)
    if not isinstance(data, str):
        raise InvalidParameterValueException(f"{member} must be base64-encoded bytes.")
    try:
        raw = base64.b64decode(data, validate=True)
    except (ValueError, binascii.Error):
        raise InvalidParameterValueException(
            "Could not unzip uploaded file. Please check your file, then try to upload again."
        ) from None
    if len(raw) > ZIP_LIMIT:
        raise InvalidParameterValueException(
            f"Zipped size must be smaller than {ZIP_LIMIT} bytes for direct upload; this package is "
            f"{len(raw)} bytes."
        )
    return raw

"""Core records → AWS response shapes."""

from __future__ import annotations

from typing import Any

from shoal.core.arns import LATEST, function_arn
from shoal.core.types import FunctionConfig


def function_configuration(
    config: FunctionConfig, region: str, *, qualified_latest: bool = False
) -> dict[str, Any]:
    """``FunctionConfiguration`` (spec §1.4). ``$LATEST`` is unqualified except where AWS qualifies it."""
    qualifier = config.version if (config.version != LATEST or qualified_latest) else None
    out: dict[str, Any] = {
        "FunctionName": config.name,
        "FunctionArn": function_arn(region, config.account_id, config.name, qualifier),
        "Runtime": config.runtime,
        "Role": config.role,
        "Handler": config.handler,
        "CodeSize": config.code_size,
        "Description": config.description,
        "Timeout": config.timeout,
        "MemorySize": config.memory_size,
        "LastModified": config.last_modified,
        "CodeSha256": config.code_sha256,
        "Version": config.version,
        "TracingConfig": {"Mode": config.tracing_mode},
        "RevisionId": config.revision_id,
        "State": config.state.value,
        "LastUpdateStatus": config.last_update_status.value,
        "PackageType": config.package_type,
        "Architectures": list(config.architectures),
        "EphemeralStorage": {"Size": config.ephemeral_storage},
        "SnapStart": {"ApplyOn": config.snap_start_apply_on, "OptimizationStatus": _optimization(config)},
        "RuntimeVersionConfig": {
            "RuntimeVersionArn": f"arn:aws:lambda:{region}::runtime:{_runtime_sha(config.runtime)}"
        },
        "LoggingConfig": _logging_config(config),
    }
    if config.environment is not None:
        out["Environment"] = {"Variables": dict(config.environment)}
    if config.state_reason:
        out["StateReason"] = config.state_reason
    if config.state_reason_code:
        out["StateReasonCode"] = config.state_reason_code
    if config.last_update_status_reason:
        out["LastUpdateStatusReason"] = config.last_update_status_reason
    if config.last_update_status_reason_code:
        out["LastUpdateStatusReasonCode"] = config.last_update_status_reason_code
    if config.dead_letter_target:
        out["DeadLetterConfig"] = {"TargetArn": config.dead_letter_target}
    if config.kms_key_arn:
        out["KMSKeyArn"] = config.kms_key_arn
    if config.layers:
        out["Layers"] = [{"Arn": layer["Arn"], "CodeSize": layer["CodeSize"]} for layer in config.layers]
    if "VpcConfig" in config.extra:
        vpc = config.extra["VpcConfig"]
        out["VpcConfig"] = {
            "SubnetIds": vpc.get("SubnetIds", []),
            "SecurityGroupIds": vpc.get("SecurityGroupIds", []),
            "VpcId": "",
        }
    if "ImageConfig" in config.extra:
        out["ImageConfigResponse"] = {"ImageConfig": config.extra["ImageConfig"]}
    return out


def _optimization(config: FunctionConfig) -> str:
    """SnapStart's ``OptimizationStatus``: On for a published version with ``ApplyOn: PublishedVersions``."""
    on = config.snap_start_apply_on == "PublishedVersions" and config.version != "$LATEST"
    return "On" if on else "Off"


def _logging_config(config: FunctionConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"LogFormat": config.log_format, "LogGroup": config.effective_log_group}
    if config.log_format == "JSON":
        out["ApplicationLogLevel"] = config.application_log_level or "INFO"
        out["SystemLogLevel"] = config.system_log_level or "INFO"
    return out


def _runtime_sha(runtime: str) -> str:
    import hashlib

    return hashlib.sha256(runtime.encode()).hexdigest()

"""The platform's log lines, exactly as Lambda writes them in the Text format (spec §5.2)."""

from __future__ import annotations

import math
import re

from shoal.core.clock import format_iso_z

_PLATFORM_ERROR_RE = re.compile(r"(Runtime|Function)\.[A-Z][a-zA-Z]+")


def platform_error_type(error_type: str) -> str:
    """How a runtime-supplied error type appears on platform lines (spec §2.4): ``Runtime.X``/``Function.X``
    are kept, other ``Function.*`` become ``Function.Unknown``, anything else ``Runtime.Unknown``."""
    if _PLATFORM_ERROR_RE.fullmatch(error_type):
        return error_type
    return "Function.Unknown" if error_type.startswith("Function.") else "Runtime.Unknown"


def init_start(runtime_version: str, runtime_version_arn: str) -> str:
    return f"INIT_START Runtime Version: {runtime_version}\tRuntime Version ARN: {runtime_version_arn}"


def init_report(init_ms: float, phase: str, status: str | None = None, error_type: str | None = None) -> str:
    line = f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: {phase}"
    if status:
        line += f"\tStatus: {status}"
    if error_type:
        line += f"\tError Type: {error_type}"
    return line


def restore_start(runtime_version: str, runtime_version_arn: str) -> str:
    """A SnapStart environment resumed from its version's snapshot instead of running INIT."""
    return f"RESTORE_START Runtime Version: {runtime_version}\tRuntime Version ARN: {runtime_version_arn}"


def restore_report(restore_ms: float) -> str:
    return f"RESTORE_REPORT Restore Duration: {restore_ms:.2f} ms"


def start(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def billed_ms(duration_ms: float, init_ms: float | None) -> int:
    """Billed Duration: ceil to 1 ms of duration plus, since Aug 2025, the INIT phase (spec §12)."""
    return max(1, math.ceil(round(duration_ms + (init_ms or 0.0), 6)))


def report(
    request_id: str,
    duration_ms: float,
    memory_mb: int,
    max_memory_mb: int,
    init_ms: float | None = None,
    status: str | None = None,
    error_type: str | None = None,
    restore_ms: float | None = None,
) -> str:
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {billed_ms(duration_ms, init_ms)} ms\tMemory Size: {memory_mb} MB\t"
        f"Max Memory Used: {max_memory_mb} MB\t"
    )
    if init_ms is not None:
        line += f"Init Duration: {init_ms:.2f} ms\t"
    if restore_ms is not None:  # a restored SnapStart environment's first invocation
        line += f"Restore Duration: {restore_ms:.2f} ms\t"
        line += f"Billed Restore Duration: {billed_ms(restore_ms, None)} ms\t"
    if status:
        line += f"Status: {status}"
        if error_type:
            line += f"\tError Type: {error_type}"
    return line


def timed_out(now: float, request_id: str, timeout_s: float) -> str:
    return f"{format_iso_z(now)} {request_id} Task timed out after {timeout_s:.2f} seconds"


def runtime_exited(request_id: str, reason: str) -> str:
    return f"RequestId: {request_id} Error: Runtime exited with error: {reason}"


def exit_reason(returncode: int) -> str:
    """Go's os/exec wording, as Lambda prints it: ``exit status 1`` / ``signal: killed``."""
    if returncode >= 0:
        return f"exit status {returncode}"
    names = {9: "killed", 15: "terminated", 11: "segmentation fault", 6: "aborted", 7: "bus error"}
    return f"signal: {names.get(-returncode, str(-returncode))}"

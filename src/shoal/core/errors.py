"""The one error hierarchy.

Two families, never mixed:

* :class:`ApiError` — the platform refused or failed an API request. Each carries its HTTP status and AWS
  error type; :mod:`shoal.api.errors` renders it as the AWS envelope. Messages name what was wrong and how to
  fix it, in AWS's words where AWS has them (spec §1.2).
* :class:`FunctionError` — the *function* failed (``Unhandled``: exceptions, timeouts, crashes, init
  failures).
  These are not API errors: Invoke answers 200 with ``X-Amz-Function-Error`` (spec §2.4).
"""

from __future__ import annotations

import json
from collections.abc import Mapping


class ShoalError(Exception):
    """Base of every error Shoal raises on purpose."""


class ApiError(ShoalError):
    status: int = 500
    code: str = "ServiceException"
    error_class: str = "Service"  # the envelope's "Type": "User" for client faults, "Service" for ours

    def __init__(
        self,
        message: str,
        *,
        extra: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.extra: dict[str, object] = dict(extra or {})
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, object]:
        return {"Type": self.error_class, "message": self.message, **self.extra}


class _UserError(ApiError):
    error_class = "User"


class InvalidParameterValueException(_UserError):
    status, code = 400, "InvalidParameterValueException"


class InvalidRequestContentException(_UserError):
    status, code = 400, "InvalidRequestContentException"


class ValidationException(_UserError):
    status, code = 400, "ValidationException"

    @classmethod
    def of(cls, problems: list[str]) -> ValidationException:
        n = len(problems)
        head = f"{n} validation error{'s' if n != 1 else ''} detected: "
        return cls(head + "; ".join(problems))


class ResourceNotFoundException(_UserError):
    status, code = 404, "ResourceNotFoundException"


class ResourceConflictException(_UserError):
    status, code = 409, "ResourceConflictException"


class PreconditionFailedException(_UserError):
    status, code = 412, "PreconditionFailedException"


class RequestEntityTooLargeException(_UserError):
    status, code = 413, "RequestEntityTooLargeException"


class UnsupportedMediaTypeException(_UserError):
    status, code = 415, "UnsupportedMediaTypeException"


class AccessDeniedException(_UserError):
    status, code = 403, "AccessDeniedException"

    @classmethod
    def not_authorized(cls, caller_account: str, action: str, resource: str) -> AccessDeniedException:
        return cls(
            f"User: arn:aws:iam::{caller_account}:root is not authorized to perform: {action} on resource: "
            f"{resource} because no resource-based policy allows the {action} action"
        )


class TooManyRequestsException(_UserError):
    status, code = 429, "TooManyRequestsException"

    @classmethod
    def throttled(cls, reason: str, retry_after: int = 1) -> TooManyRequestsException:
        """Lambda's throttle: ``Rate Exceeded.`` with a ``Reason`` and ``Retry-After`` (spec §1.2, §7)."""
        return cls("Rate Exceeded.", extra={"Reason": reason}, headers={"Retry-After": str(retry_after)})


class CodeStorageExceededException(_UserError):
    status, code = 400, "CodeStorageExceededException"


class UnknownOperationException(_UserError):
    status, code = 404, "UnknownOperationException"


class NotImplementedException(_UserError):
    """An AWS Lambda operation that this version of Shoal does not implement yet."""

    status, code = 501, "NotImplementedException"

    @classmethod
    def for_operation(cls, operation: str) -> NotImplementedException:
        return cls(f"The {operation} operation is not supported by Shoal yet.")


class SnapStartException(_UserError):
    status, code = 400, "SnapStartException"

    @classmethod
    def after_restore(cls) -> SnapStartException:
        return cls(
            "The afterRestore() runtime hook encountered an error. "
            "For more information, check the Amazon CloudWatch logs."
        )


class SnapStartTimeoutException(_UserError):
    status, code = 408, "SnapStartTimeoutException"

    @classmethod
    def restore(cls) -> SnapStartTimeoutException:
        return cls("Lambda couldn't restore the snapshot within the timeout limit.")


class ServiceException(ApiError):
    status, code = 500, "ServiceException"


class ResourceNotReadyException(ApiError):
    status, code = 502, "ResourceNotReadyException"


class FunctionError(ShoalError):
    """A function-level failure: Invoke answers 200 + ``X-Amz-Function-Error: Unhandled`` and
    :meth:`payload`."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message

    def payload(self) -> bytes:
        return json.dumps({"errorMessage": self.message, "errorType": self.error_type}).encode()

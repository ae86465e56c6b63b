"""The Invoke operation: headers and body → ``InvokeRequest`` → ``Invoker`` → 200/202/204 + headers."""

from __future__ import annotations

import base64
import binascii
import json

from starlette.responses import Response

from shoal.api.call import Call, Handler
from shoal.core.arns import function_arn, parse_function_ref
from shoal.core.errors import (
    AccessDeniedException,
    InvalidParameterValueException,
    InvalidRequestContentException,
    ValidationException,
)
from shoal.core.types import InvocationType, InvokeRequest

MAX_CLIENT_CONTEXT = 3583
_TYPES = {t.value: t for t in InvocationType}


def _client_context(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_CLIENT_CONTEXT:
        raise InvalidParameterValueException(
            f"Client context must be at most {MAX_CLIENT_CONTEXT} bytes of base64-encoded JSON."
        )
    try:
        decoded = base64.b64decode(value, validate=True).decode()
        json.loads(decoded)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequestContentException(
            "Client context must be a valid Base64-encoded JSON object."
        ) from None
    return json.dumps(json.loads(decoded))  # normalised to ASCII for the Runtime API header


async def invoke(call: Call) -> Response:
    ref = parse_function_ref(
        call.params["FunctionName"], query_qualifier=call.query.get("Qualifier"), max_len=256
    )
    type_header = call.header("x-amz-invocation-type") or "RequestResponse"
    invocation_type = _TYPES.get(type_header)
    log_type = call.header("x-amz-log-type") or "None"
    problems = []
    if invocation_type is None:
        problems.append(
            f"Value '{type_header}' at 'invocationType' failed to satisfy constraint: Member must "
            "satisfy enum value set: [Event, RequestResponse, DryRun]"
        )
    if log_type not in ("None", "Tail"):
        problems.append(
            f"Value '{log_type}' at 'logType' failed to satisfy constraint: Member must satisfy "
            "enum value set: [None, Tail]"
        )
    if problems:
        raise ValidationException.of(problems)
    assert invocation_type is not None
    owner = ref.account_id or call.account_id
    if owner != call.account_id:  # another account's function: only its resource policy can allow this
        qualifier = ref.qualifier if ref.qualifier not in (None, "$LATEST") else ""
        if not call.services.policies.allows(
            owner, ref.name, qualifier or "", call.account_id, "lambda:InvokeFunction"
        ):
            raise AccessDeniedException.not_authorized(
                call.account_id,
                "lambda:InvokeFunction",
                function_arn(call.services.config.region, owner, ref.name, ref.qualifier),
            )
    request = InvokeRequest(
        account_id=owner,
        function_name=ref.name,
        payload=await call.body(),
        qualifier=ref.qualifier,
        invocation_type=invocation_type,
        tail_log=log_type == "Tail" and invocation_type is InvocationType.REQUEST_RESPONSE,
        client_context=_client_context(call.header("x-amz-client-context")),
    )
    result = await call.services.invoker.invoke(request)
    headers = {"x-amzn-RequestId": result.request_id}
    if result.status_code == 200:
        if result.executed_version:
            headers["X-Amz-Executed-Version"] = result.executed_version
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        if result.log_result is not None:
            headers["X-Amz-Log-Result"] = result.log_result
        return Response(result.payload, 200, headers=headers, media_type=result.content_type)
    return Response(b"", result.status_code, headers=headers)


HANDLERS: dict[str, Handler] = {"Invoke": invoke}

"""AddPermission, GetPolicy, RemovePermission."""

from __future__ import annotations

import json

from starlette.responses import Response

from shoal.api.call import Call, Handler, empty_response, json_response
from shoal.api.functions import function_ref


async def add_permission(call: Call) -> Response:
    statement = await call.services.policies.add(call.account_id, function_ref(call), await call.json())
    return json_response(call, {"Statement": json.dumps(statement, separators=(",", ":"))}, 201)


async def get_policy(call: Call) -> Response:
    document, revision = call.services.policies.get(call.account_id, function_ref(call))
    return json_response(call, {"Policy": document, "RevisionId": revision})


async def remove_permission(call: Call) -> Response:
    await call.services.policies.remove(
        call.account_id, function_ref(call), call.params["StatementId"], call.query.get("RevisionId")
    )
    return empty_response(call, 204)


HANDLERS: dict[str, Handler] = {
    "AddPermission": add_permission,
    "GetPolicy": get_policy,
    "RemovePermission": remove_permission,
}

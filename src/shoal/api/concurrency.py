"""PutFunctionConcurrency, GetFunctionConcurrency, DeleteFunctionConcurrency."""

from __future__ import annotations

from starlette.responses import Response

from shoal.api.call import Call, Handler, empty_response, json_response
from shoal.core.arns import parse_function_ref


async def put_function_concurrency(call: Call) -> Response:
    ref = parse_function_ref(call.params["FunctionName"])
    value = await call.services.concurrency.put(call.account_id, ref, await call.json())
    return json_response(call, {"ReservedConcurrentExecutions": value})


async def get_function_concurrency(call: Call) -> Response:
    value = call.services.concurrency.get(call.account_id, parse_function_ref(call.params["FunctionName"]))
    return json_response(call, {} if value is None else {"ReservedConcurrentExecutions": value})


async def delete_function_concurrency(call: Call) -> Response:
    await call.services.concurrency.delete(call.account_id, parse_function_ref(call.params["FunctionName"]))
    return empty_response(call, 204)


HANDLERS: dict[str, Handler] = {
    "PutFunctionConcurrency": put_function_concurrency,
    "GetFunctionConcurrency": get_function_concurrency,
    "DeleteFunctionConcurrency": delete_function_concurrency,
}

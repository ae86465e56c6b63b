"""Put/Get/Delete/ListProvisionedConcurrencyConfig[s]."""

from __future__ import annotations

from starlette.responses import Response

from shoal.api.call import Call, Handler, empty_response, json_response
from shoal.api.functions import function_ref
from shoal.core.arns import parse_function_ref


async def put_provisioned_concurrency_config(call: Call) -> Response:
    out = await call.services.provisioned.put(call.account_id, function_ref(call), await call.json())
    return json_response(call, out, 202)


async def get_provisioned_concurrency_config(call: Call) -> Response:
    return json_response(call, call.services.provisioned.get(call.account_id, function_ref(call)))


async def delete_provisioned_concurrency_config(call: Call) -> Response:
    await call.services.provisioned.delete(call.account_id, function_ref(call))
    return empty_response(call, 204)


async def list_provisioned_concurrency_configs(call: Call) -> Response:
    ref = parse_function_ref(call.params["FunctionName"])
    return json_response(
        call, {"ProvisionedConcurrencyConfigs": call.services.provisioned.list(call.account_id, ref)}
    )


HANDLERS: dict[str, Handler] = {
    "PutProvisionedConcurrencyConfig": put_provisioned_concurrency_config,
    "GetProvisionedConcurrencyConfig": get_provisioned_concurrency_config,
    "DeleteProvisionedConcurrencyConfig": delete_provisioned_concurrency_config,
    "ListProvisionedConcurrencyConfigs": list_provisioned_concurrency_configs,
}

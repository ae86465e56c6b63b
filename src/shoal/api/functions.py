"""Function control-plane operations: parse → call the FunctionService → render."""

from __future__ import annotations

from starlette.responses import Response

from shoal.api.call import Call, Handler, empty_response, json_response
from shoal.api.render import function_configuration
from shoal.core.arns import FunctionRef, parse_function_ref
from shoal.core.errors import ValidationException
from shoal.core.types import FunctionConfig


def function_ref(call: Call, *, with_query: bool = True) -> FunctionRef:
    qualifier = call.query.get("Qualifier") if with_query else None
    return parse_function_ref(call.params["FunctionName"], query_qualifier=qualifier)


def render(call: Call, config: FunctionConfig, *, qualified_latest: bool = False) -> dict[str, object]:
    return function_configuration(
        config,
        call.services.config.region,
        qualified_latest=qualified_latest,
    )


def max_items_of(call: Call) -> int | None:
    max_items = call.query.get("MaxItems")
    if max_items is None:
        return None
    if not max_items.isdigit() or not 1 <= int(max_items) <= 10000:
        raise ValidationException.of(
            [
                f"Value '{max_items}' at 'maxItems' failed to satisfy constraint: "
                "Member must have value between 1 and 10000"
            ]
        )
    return int(max_items)


async def create_function(call: Call) -> Response:
    config = await call.services.functions.create(call.account_id, await call.json())
    return json_response(call, render(call, config), 201)


async def get_function(call: Call) -> Response:
    svc = call.services.functions
    config = svc.get(call.account_id, function_ref(call))
    base = str(call.request.base_url)
    out: dict[str, object] = {
        "Configuration": render(call, config),
        "Code": {"RepositoryType": "S3", "Location": call.services.code_urls.url(base, config.code_key)},
    }
    latest = svc.get(call.account_id, parse_function_ref(config.name))
    tags = latest.extra.get("Tags")
    if tags:
        out["Tags"] = tags
    if latest.reserved_concurrency is not None:
        out["Concurrency"] = {"ReservedConcurrentExecutions": latest.reserved_concurrency}
    return json_response(call, out)


async def get_function_configuration(call: Call) -> Response:
    config = call.services.functions.get(call.account_id, function_ref(call))
    return json_response(call, render(call, config))


async def list_functions(call: Call) -> Response:
    version = call.query.get("FunctionVersion")
    if version not in (None, "ALL"):
        raise ValidationException.of(
            [
                f"Value '{version}' at 'functionVersion' failed to satisfy constraint: "
                "Member must satisfy enum value set: [ALL]"
            ]
        )
    limit = max_items_of(call)
    page = call.services.functions.list(call.account_id, call.query.get("Marker"), limit, version == "ALL")
    out: dict[str, object] = {
        "Functions": [render(call, c, qualified_latest=version == "ALL") for c in page.functions]
    }
    if page.next_marker:
        out["NextMarker"] = page.next_marker
    return json_response(call, out)


async def update_function_code(call: Call) -> Response:
    body = await call.json()
    config = await call.services.functions.update_code(
        call.account_id, function_ref(call, with_query=False), body
    )
    return json_response(call, render(call, config))


async def update_function_configuration(call: Call) -> Response:
    body = await call.json()
    config = await call.services.functions.update_configuration(
        call.account_id,
        function_ref(call, with_query=False),
        body,
    )
    return json_response(call, render(call, config))


async def delete_function(call: Call) -> Response:
    await call.services.functions.delete(call.account_id, function_ref(call))
    return empty_response(call, 204)


async def get_account_settings(call: Call) -> Response:
    return json_response(call, call.services.functions.account_settings(call.account_id))


HANDLERS: dict[str, Handler] = {
    "CreateFunction": create_function,
    "GetFunction": get_function,
    "GetFunctionConfiguration": get_function_configuration,
    "ListFunctions": list_functions,
    "UpdateFunctionCode": update_function_code,
    "UpdateFunctionConfiguration": update_function_configuration,
    "DeleteFunction": delete_function,
    "GetAccountSettings": get_account_settings,
}

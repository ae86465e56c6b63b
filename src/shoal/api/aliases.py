"""CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases."""

from __future__ import annotations

from starlette.responses import Response

from shoal.api.call import Call, Handler, empty_response, json_response
from shoal.api.functions import max_items_of
from shoal.core.arns import parse_function_ref


async def create_alias(call: Call) -> Response:
    svc = call.services.aliases
    alias = await svc.create(
        call.account_id, parse_function_ref(call.params["FunctionName"]), await call.json()
    )
    return json_response(call, svc.render(alias), 201)


async def get_alias(call: Call) -> Response:
    svc = call.services.aliases
    alias = svc.get(call.account_id, parse_function_ref(call.params["FunctionName"]), call.params["Name"])
    return json_response(call, svc.render(alias))


async def update_alias(call: Call) -> Response:
    svc = call.services.aliases
    ref = parse_function_ref(call.params["FunctionName"])
    alias = await svc.update(call.account_id, ref, call.params["Name"], await call.json())
    return json_response(call, svc.render(alias))


async def delete_alias(call: Call) -> Response:
    ref = parse_function_ref(call.params["FunctionName"])
    await call.services.aliases.delete(call.account_id, ref, call.params["Name"])
    return empty_response(call, 204)


async def list_aliases(call: Call) -> Response:
    svc = call.services.aliases
    page = svc.page(
        call.account_id,
        parse_function_ref(call.params["FunctionName"]),
        call.query.get("FunctionVersion"),
        call.query.get("Marker"),
        max_items_of(call),
    )
    out: dict[str, object] = {"Aliases": [svc.render(a) for a in page.aliases]}
    if page.next_marker:
        out["NextMarker"] = page.next_marker
    return json_response(call, out)


HANDLERS: dict[str, Handler] = {
    "CreateAlias": create_alias,
    "GetAlias": get_alias,
    "UpdateAlias": update_alias,
    "DeleteAlias": delete_alias,
    "ListAliases": list_aliases,
}

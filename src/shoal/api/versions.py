"""PublishVersion and ListVersionsByFunction."""

from __future__ import annotations

from starlette.responses import Response

from shoal.api.call import Call, Handler, json_response
from shoal.api.functions import function_ref, max_items_of, render
from shoal.core.arns import parse_function_ref


async def publish_version(call: Call) -> Response:
    ref = parse_function_ref(call.params["FunctionName"])
    config = await call.services.versions.publish(call.account_id, ref, await call.json())
    return json_response(call, render(call, config), 201)


async def list_versions_by_function(call: Call) -> Response:
    page = call.services.versions.list(
        call.account_id, function_ref(call, with_query=False), call.query.get("Marker"), max_items_of(call)
    )
    out: dict[str, object] = {"Versions": [render(call, c, qualified_latest=True) for c in page.functions]}
    if page.next_marker:
        out["NextMarker"] = page.next_marker
    return json_response(call, out)


HANDLERS: dict[str, Handler] = {
    "PublishVersion": publish_version,
    "ListVersionsByFunction": list_versions_by_function,
}

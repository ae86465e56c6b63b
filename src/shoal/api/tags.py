"""TagResource, UntagResource, ListTags."""

from __future__ import annotations

from starlette.responses import Response

from shoal.api.call import Call, Handler, empty_response, json_response
from shoal.core.errors import ValidationException


async def tag_resource(call: Call) -> Response:
    body = await call.json()
    if "Tags" not in body:
        raise ValidationException.of(
            ["Value null at 'tags' failed to satisfy constraint: Member must not be null"]
        )
    await call.services.tags.tag(call.account_id, call.params["Resource"], body["Tags"])
    return empty_response(call, 204)


async def untag_resource(call: Call) -> Response:
    keys = call.query.getlist("tagKeys")
    if not keys:
        raise ValidationException.of(
            ["Value null at 'tagKeys' failed to satisfy constraint: Member must not be null"]
        )
    await call.services.tags.untag(call.account_id, call.params["Resource"], keys)
    return empty_response(call, 204)


async def list_tags(call: Call) -> Response:
    return json_response(call, {"Tags": call.services.tags.tags(call.account_id, call.params["Resource"])})


HANDLERS: dict[str, Handler] = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTags": list_tags,
}

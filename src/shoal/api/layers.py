"""Layer control-plane operations (``/2018-10-31/layers``): parse → call the LayerService → render."""

from __future__ import annotations

from typing import Any, cast

from starlette.responses import Response

from shoal.api.call import Call, Handler, empty_response, json_response
from shoal.control.layers import LayerPage, LayerService, layer_arn, layer_version_arn, policy_json
from shoal.core.errors import NotImplementedException
from shoal.store.layers import LayerVersionRecord


def _service(call: Call) -> LayerService:
    service = getattr(call.services, "layers", None)
    if service is None:  # a server built without layers
        raise NotImplementedException.for_operation(call.operation)
    return cast(LayerService, service)


def _region(call: Call) -> str:
    return call.services.config.region


def _optional(out: dict[str, Any], record: LayerVersionRecord) -> dict[str, Any]:
    """Members AWS leaves out when they were not given."""
    if record.compatible_runtimes:
        out["CompatibleRuntimes"] = list(record.compatible_runtimes)
    if record.license_info is not None:
        out["LicenseInfo"] = record.license_info
    if record.compatible_architectures:
        out["CompatibleArchitectures"] = list(record.compatible_architectures)
    return out


def layer_version(call: Call, record: LayerVersionRecord) -> dict[str, Any]:
    """Publish/GetLayerVersion(ByArn) response: ``Content{Location, CodeSha256, CodeSize}`` + the version."""
    region = _region(call)
    location = call.services.code_urls.url(str(call.request.base_url), record.code_sha256_hex)
    out: dict[str, Any] = {
        "Content": {"Location": location, "CodeSha256": record.code_sha256, "CodeSize": record.code_size},
        "LayerArn": layer_arn(region, record.account_id, record.name),
        "LayerVersionArn": layer_version_arn(region, record.account_id, record.name, record.version),
        "Description": record.description,
        "CreatedDate": record.created_date,
        "Version": record.version,
    }
    return _optional(out, record)


def list_item(region: str, record: LayerVersionRecord) -> dict[str, Any]:
    """``LayerVersionsListItem`` (ListLayerVersions, ListLayers' ``LatestMatchingVersion``)."""
    out: dict[str, Any] = {
        "LayerVersionArn": layer_version_arn(region, record.account_id, record.name, record.version),
        "Version": record.version,
        "Description": record.description,
        "CreatedDate": record.created_date,
    }
    return _optional(out, record)


def _paged(key: str, items: list[dict[str, Any]], page: LayerPage) -> dict[str, Any]:
    out: dict[str, Any] = {key: items}
    if page.next_marker:
        out["NextMarker"] = page.next_marker
    return out


async def publish_layer_version(call: Call) -> Response:
    record = await _service(call).publish(call.account_id, call.params["LayerName"], await call.json())
    return json_response(call, layer_version(call, record), 201)


async def get_layer_version(call: Call) -> Response:
    record = await _service(call).get(call.account_id, call.params["LayerName"], call.params["VersionNumber"])
    return json_response(call, layer_version(call, record))


async def get_layer_version_by_arn(call: Call) -> Response:
    record = await _service(call).get_by_arn(call.account_id, call.query.get("Arn"))
    return json_response(call, layer_version(call, record))


async def list_layers(call: Call) -> Response:
    q = call.query
    page = await _service(call).list_layers(
        call.account_id,
        q.get("CompatibleRuntime"),
        q.get("CompatibleArchitecture"),
        q.get("Marker"),
        q.get("MaxItems"),
    )
    region = _region(call)
    items = [
        {
            "LayerName": record.name,
            "LayerArn": layer_arn(region, record.account_id, record.name),
            "LatestMatchingVersion": list_item(region, record),
        }
        for record in page.items
    ]
    return json_response(call, _paged("Layers", items, page))


async def list_layer_versions(call: Call) -> Response:
    q = call.query
    page = await _service(call).list_versions(
        call.account_id,
        call.params["LayerName"],
        q.get("CompatibleRuntime"),
        q.get("CompatibleArchitecture"),
        q.get("Marker"),
        q.get("MaxItems"),
    )
    region = _region(call)
    return json_response(call, _paged("LayerVersions", [list_item(region, r) for r in page.items], page))


async def delete_layer_version(call: Call) -> Response:
    await _service(call).delete(call.account_id, call.params["LayerName"], call.params["VersionNumber"])
    return empty_response(call, 204)


async def add_layer_version_permission(call: Call) -> Response:
    statement, revision = await _service(call).add_permission(
        call.account_id,
        call.params["LayerName"],
        call.params["VersionNumber"],
        await call.json(),
        call.query.get("RevisionId"),
    )
    return json_response(call, {"Statement": policy_json(statement), "RevisionId": revision}, 201)


async def get_layer_version_policy(call: Call) -> Response:
    policy, revision = await _service(call).get_policy(
        call.account_id, call.params["LayerName"], call.params["VersionNumber"]
    )
    return json_response(call, {"Policy": policy_json(policy), "RevisionId": revision})


async def remove_layer_version_permission(call: Call) -> Response:
    await _service(call).remove_permission(
        call.account_id,
        call.params["LayerName"],
        call.params["VersionNumber"],
        call.params["StatementId"],
        call.query.get("RevisionId"),
    )
    return empty_response(call, 204)


HANDLERS: dict[str, Handler] = {
    "PublishLayerVersion": publish_layer_version,
    "GetLayerVersion": get_layer_version,
    "GetLayerVersionByArn": get_layer_version_by_arn,
    "ListLayers": list_layers,
    "ListLayerVersions": list_layer_versions,
    "DeleteLayerVersion": delete_layer_version,
    "AddLayerVersionPermission": add_layer_version_permission,
    "GetLayerVersionPolicy": get_layer_version_policy,
    "RemoveLayerVersionPermission": remove_layer_version_permission,
}

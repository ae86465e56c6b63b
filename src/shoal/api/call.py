"""The typed call every handler receives, and the services it may use."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from shoal.api.codeurls import CodeUrlSigner
from shoal.config import Config
from shoal.control.aliases import AliasService
from shoal.control.concurrency import ConcurrencyService
from shoal.control.functions import FunctionService
from shoal.control.layers import LayerService
from shoal.control.policies import PolicyService
from shoal.control.provisioned import ProvisionedService
from shoal.control.tags import TagService
from shoal.control.versions import VersionService
from shoal.core.errors import InvalidRequestContentException, RequestEntityTooLargeException
from shoal.core.types import Invoker
from shoal.logs.store import FileLogStore

# Request body limits per operation (spec §2.3, §11); everything else gets the generic bound.
BODY_LIMITS = {
    "Invoke": 6_291_456,
    "CreateFunction": 69_905_067,
    "UpdateFunctionCode": 69_905_067,
    "PublishLayerVersion": 69_905_067,
}
DEFAULT_BODY_LIMIT = 1_048_576 * 6


@dataclass(frozen=True)
class Services:
    config: Config
    functions: FunctionService
    invoker: Invoker
    logs: FileLogStore
    code_urls: CodeUrlSigner
    versions: VersionService
    aliases: AliasService
    tags: TagService
    policies: PolicyService
    concurrency: ConcurrencyService
    provisioned: ProvisionedService
    layers: LayerService


@dataclass
class Call:
    request: Request
    operation: str
    params: dict[str, str]
    account_id: str
    request_id: str
    services: Services
    _body: bytes | None = None

    @property
    def query(self) -> Any:
        return self.request.query_params

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)

    async def body(self) -> bytes:
        if self._body is None:
            limit = BODY_LIMITS.get(self.operation, DEFAULT_BODY_LIMIT)
            declared = self.request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise self._too_large(limit, int(declared))
            chunks, size = [], 0
            async for chunk in self.request.stream():
                size += len(chunk)
                if size > limit:
                    raise self._too_large(limit, size)
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body

    def _too_large(self, limit: int, size: int) -> RequestEntityTooLargeException:
        return RequestEntityTooLargeException(
            f"Request must be smaller than {limit} bytes for the {self.operation_label} operation"
        )

    @property
    def operation_label(self) -> str:
        return "InvokeFunction" if self.operation == "Invoke" else self.operation

    async def json(self) -> dict[str, Any]:
        raw = await self.body()
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise InvalidRequestContentException(f"Could not parse request body into json: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidRequestContentException("Could not parse request body into json: expected an object")
        return data


Handler = Callable[[Call], Awaitable[Response]]


def json_response(call: Call, data: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(data),
        status_code=status,
        media_type="application/json",
        headers={"x-amzn-RequestId": call.request_id},
    )


def empty_response(call: Call, status: int = 204) -> Response:
    return Response(b"", status_code=status, headers={"x-amzn-RequestId": call.request_id})

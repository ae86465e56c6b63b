"""The ASGI application: one dispatcher for the Lambda REST API, the CloudWatch Logs JSON API and code
downloads. Handlers are looked up by operation name; the rest answers an AWS-shaped error."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from shoal.api import (
    aliases,
    concurrency,
    functions,
    invoke,
    layers,
    logs,
    policies,
    provisioned,
    tags,
    versions,
)
from shoal.api.auth import Authenticator, AuthError, read_body
from shoal.api.auth import error_response as auth_error_response
from shoal.api.call import Call, Handler, Services
from shoal.api.codeurls import PATH_PREFIX
from shoal.api.errors import error_response, internal_error
from shoal.api.routing import match
from shoal.core.errors import ApiError, NotImplementedException, UnknownOperationException
from shoal.core.ids import request_id

HANDLERS: dict[str, Handler] = {
    **functions.HANDLERS,
    **invoke.HANDLERS,
    **versions.HANDLERS,
    **aliases.HANDLERS,
    **tags.HANDLERS,
    **policies.HANDLERS,
    **concurrency.HANDLERS,
    **provisioned.HANDLERS,
    **layers.HANDLERS,
}


class ShoalApp:
    def __init__(self, services: Services, auth: Authenticator | None = None) -> None:
        self.services = services
        self.auth = auth or Authenticator(None, default_account_id=services.config.account_id)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return  # the server owns start-up and shut-down (shoal.server)
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self.dispatch(request)
        await response(scope, receive, send)

    async def dispatch(self, request: Request) -> Response:
        rid = request_id()
        try:
            target = request.headers.get("x-amz-target")
            path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
            if path.startswith(PATH_PREFIX) and request.method == "GET":  # presigned by Shoal itself
                return await self._download(request, path.removeprefix(PATH_PREFIX))
            account = self.services.config.account_id
            if self.auth.enabled:
                account = await self.auth.authenticate(request, await read_body(request))
            if target is not None and target.startswith("Logs_20140328."):
                operation = target.removeprefix("Logs_20140328.")
                return await logs.dispatch(request, operation, self.services, rid, account)
            found = match(request.method, path, dict(request.query_params))
            if found is None:
                raise UnknownOperationException(f"Unknown operation {request.method} {request.url.path}")
            route, params = found
            handler = HANDLERS.get(route.operation)
            if handler is None:
                raise NotImplementedException.for_operation(route.operation)
            call = Call(request, route.operation, params, account, rid, self.services)
            return await handler(call)
        except AuthError as exc:  # in the envelope of the API called: JSON 1.1 (400s) for logs
            return auth_error_response(exc, rid)
        except ApiError as exc:
            return error_response(exc, rid)
        except Exception as exc:  # errors always reach someone: the log, and the client as a 500
            return internal_error(exc, rid)

    async def _download(self, request: Request, sha_hex: str) -> Response:
        import asyncio

        urls = self.services.code_urls
        q = request.query_params
        if not urls.verify(sha_hex, q.get("Expires", ""), q.get("Signature", "")):
            return Response(
                b"<Error><Code>AccessDenied</Code><Message>Request has expired or the signature "
                b"does not match</Message></Error>",
                403,
                media_type="application/xml",
            )
        code = self.services.functions.code
        try:
            data = await asyncio.to_thread(code.read, sha_hex)
        except (KeyError, ValueError, FileNotFoundError):
            return Response(b"<Error><Code>NoSuchKey</Code></Error>", 404, media_type="application/xml")
        return Response(data, 200, media_type="application/zip")

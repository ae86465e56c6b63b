"""An HTTP handler for API Gateway HTTP APIs (payload format 2.0) and Lambda function URLs.

The event carries the request (``requestContext.http.method``, ``rawPath``, ``headers``, ``body``); the
handler answers ``{"statusCode", "headers", "body"}``, which API Gateway or the function URL turns into the
HTTP response. Routes::

    GET  /                → 200 the routes
    GET  /hello/{name}    → 200 a greeting (?greeting=Hi changes the word)
    POST /items           → 201 the JSON object sent, with an id and a Location header
    a known path, another method → 405 with an Allow header
    anything else         → 404

Add a route by writing a function ``(request, params) -> response`` and listing it in ``ROUTES``. REST API
events (payload format 1.0: ``httpMethod``, ``path``) are understood too.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

Response = dict[str, Any]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes


def respond(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": json.dumps(payload),
        "isBase64Encoded": False,
    }


# ---- routes ---------------------------------------------------------------------------------------------


def list_routes(request: Request, params: dict[str, str]) -> Response:
    return respond(200, {"routes": [f"{method} {pattern}" for method, pattern, _ in ROUTES]})


def hello(request: Request, params: dict[str, str]) -> Response:
    greeting = request.query.get("greeting", "Hello")
    return respond(200, {"message": f"{greeting}, {params['name']}!"})


def create_item(request: Request, params: dict[str, str]) -> Response:
    try:
        item = json.loads(request.body or b"null")
    except ValueError:
        return respond(400, {"message": "the body is not JSON"})
    if not isinstance(item, dict):
        return respond(400, {"message": "the body must be a JSON object"})
    item = {**item, "id": str(uuid.uuid4())}
    return respond(201, item, {"Location": f"/items/{item['id']}"})


Handler = Callable[[Request, dict[str, str]], Response]
ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/", list_routes),
    ("GET", "/hello/{name}", hello),
    ("POST", "/items", create_item),
]


# ---- dispatch -------------------------------------------------------------------------------------------


def _compile(pattern: str) -> re.Pattern[str]:
    """``/hello/{name}`` → a regex with the named group ``name`` matching one path segment."""
    parts = re.split(r"\{(\w+)\}", pattern)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
    return re.compile(f"^{regex}/?$")


_COMPILED = [(method, _compile(pattern), handler) for method, pattern, handler in ROUTES]


def parse(event: dict[str, Any]) -> Request:
    context = event.get("requestContext") or {}
    http = context.get("http")
    if isinstance(http, dict):  # payload 2.0: HTTP API or function URL
        method = str(http.get("method", "GET"))
        path = str(event.get("rawPath") or http.get("path") or "/")
        stage = context.get("stage")
        if stage and stage != "$default" and (path == f"/{stage}" or path.startswith(f"/{stage}/")):
            path = path[len(stage) + 1 :] or "/"  # a named stage prefixes the path
    else:  # payload 1.0: REST API proxy integration
        method = str(event.get("httpMethod", "GET"))
        path = str(event.get("path") or "/")
    raw = event.get("body") or ""
    try:
        body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    except (binascii.Error, ValueError):
        body = b""
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    query = {str(k): str(v) for k, v in (event.get("queryStringParameters") or {}).items()}
    return Request(method.upper(), path, query, headers, body)


def lambda_handler(event: dict[str, Any], context: Any) -> Response:
    request = parse(event)
    allowed: list[str] = []
    for method, pattern, handler in _COMPILED:
        match = pattern.match(request.path)
        if match is None:
            continue
        if method != request.method:
            allowed.append(method)
            continue
        params = {k: unquote(v) for k, v in match.groupdict().items()}
        response = handler(request, params)
        print(json.dumps({"method": request.method, "path": request.path, "status": response["statusCode"]}))
        return response
    if allowed:
        return respond(405, {"message": "Method Not Allowed"}, {"Allow": ", ".join(sorted(set(allowed)))})
    return respond(404, {"message": "Not Found", "path": request.path})

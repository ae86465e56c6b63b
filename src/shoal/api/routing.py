"""Routes for every operation in botocore's Lambda service model.

The model says each operation's method and URI template; an operation with a handler runs it, every other
one answers ``NotImplementedException`` naming the operation (never a stack trace, never a silent success).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from urllib.parse import unquote

import botocore.session


@dataclass(frozen=True)
class Route:
    operation: str
    method: str
    pattern: re.Pattern[str]
    required_query: tuple[tuple[str, str], ...]  # e.g. (("find", "LayerVersion"),)
    success_status: int


def _compile(uri: str) -> tuple[re.Pattern[str], tuple[tuple[str, str], ...]]:
    path, _, query = uri.partition("?")
    required = tuple((k, val) for k, _, val in (part.partition("=") for part in query.split("&") if part))
    regex = ""
    for piece in re.split(r"(\{[^}]+\})", path):
        if piece.startswith("{"):
            name = piece[1:-1]
            greedy = name.endswith("+")
            name = name.rstrip("+")
            regex += f"(?P<{name}>.+)" if greedy else f"(?P<{name}>[^/]+)"
        else:
            regex += re.escape(piece)
    return re.compile(regex), required


@cache
def lambda_routes() -> tuple[Route, ...]:
    model = botocore.session.get_session().get_service_model("lambda")
    routes = []
    for name in model.operation_names:
        op = model.operation_model(name)
        pattern, required = _compile(op.http["requestUri"])
        routes.append(
            Route(name, op.http["method"], pattern, required, int(op.http.get("responseCode", 200)))
        )
    # operations that need a query parameter win over the plain path they share
    routes.sort(key=lambda r: -len(r.required_query))
    return tuple(routes)


def match(method: str, raw_path: str, query: dict[str, str]) -> tuple[Route, dict[str, str]] | None:
    """The operation a request names, with its path parameters (percent-decoded)."""
    for route in lambda_routes():
        m = route.pattern.fullmatch(raw_path)
        if m is None or any(query.get(k) != val for k, val in route.required_query):
            continue
        if route.method == method:
            return route, {k: unquote(val) for k, val in m.groupdict().items()}
    return None

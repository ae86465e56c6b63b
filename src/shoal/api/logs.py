"""CloudWatch Logs JSON 1.1 API (``X-Amz-Target: Logs_20140328.<Operation>``). Filled in by the logs work."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from shoal.api.call import Services


async def dispatch(request: Request, operation: str, services: Services, rid: str) -> Response:
    body = {"__type": "UnknownOperationException", "message": f"The {operation} operation is not supported yet."}
    return Response(json.dumps(body), 400, media_type="application/x-amz-json-1.1",
                    headers={"x-amzn-RequestId": rid})

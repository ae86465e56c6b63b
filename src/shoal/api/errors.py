"""The one place that renders errors as the AWS envelope (spec §1.1)."""

from __future__ import annotations

import json
import logging

from starlette.responses import Response

from shoal.core.errors import ApiError, ServiceException
from shoal.core.ids import request_id

log = logging.getLogger("shoal.api")


def error_response(exc: ApiError, rid: str | None = None) -> Response:
    headers = {"x-amzn-ErrorType": exc.code, "x-amzn-RequestId": rid or request_id(), **exc.headers}
    return Response(
        json.dumps(exc.body()), status_code=exc.status, headers=headers, media_type="application/json"
    )


def internal_error(exc: BaseException, rid: str | None = None) -> Response:
    log.error("internal error", exc_info=exc)
    return error_response(
        ServiceException("Shoal hit an internal error; the server log has the details."), rid
    )

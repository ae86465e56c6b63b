"""``LocalInvoker``: runs invocations in this node's execution environments.

Per invocation: a dict lookup for the configuration (the catalog is in memory), an environment from the pool,
the run, and log lines appended to an in-memory buffer. No database round trip and no disk write.
"""

from __future__ import annotations

import base64
import json
import random

from shoal.core import ids
from shoal.core.arns import LATEST, function_arn
from shoal.core.errors import (
    InvalidRequestContentException,
    NotImplementedException,
    RequestEntityTooLargeException,
    ResourceConflictException,
    ResourceNotFoundException,
    ResourceNotReadyException,
)
from shoal.core.types import FunctionConfig, InvocationType, InvokeRequest, InvokeResult, State, UpdateStatus
from shoal.environments.environment import EnvironmentGone, Invocation
from shoal.environments.pool import EnvironmentPool
from shoal.store.catalog import FunctionCatalog

MAX_SYNC_PAYLOAD = 6_291_456
TAIL_BYTES = 4096


class LocalInvoker:
    def __init__(
        self, catalog: FunctionCatalog, pool: EnvironmentPool, region: str, rng: random.Random | None = None
    ) -> None:
        self.catalog = catalog
        self.pool = pool
        self.region = region
        self.random = rng or random.Random()

    def resolve(self, request: InvokeRequest) -> FunctionConfig:
        """The function version an Invoke names (an alias picks by its routing weights), or the AWS error
        for why it cannot run."""
        version = request.qualifier or LATEST
        if version != LATEST and not version.isdigit():
            alias = self.catalog.alias(request.account_id, request.function_name, version)
            if alias is None:
                version = ""  # not found below
            elif alias.additional_version is not None and self.random.random() < alias.additional_weight:
                version = alias.additional_version
            else:
                version = alias.function_version
        config = self.catalog.get(request.account_id, request.function_name, version) if version else None
        if config is None:
            arn = function_arn(
                self.region,
                request.account_id,
                request.function_name,
                request.qualifier if request.qualifier else None,
            )
            raise ResourceNotFoundException(f"Function not found: {arn}")
        if config.state is State.PENDING:
            raise ResourceConflictException(
                "The operation cannot be performed at this time. "
                "The function is currently in the following state: Pending"
            )
        if config.state is State.FAILED:
            raise ResourceNotReadyException(
                f"The function could not be started: {config.state_reason}. Fix the code or configuration "
                "with UpdateFunctionCode or UpdateFunctionConfiguration."
            )
        return config

    async def invoke(self, request: InvokeRequest) -> InvokeResult:
        if len(request.payload) > MAX_SYNC_PAYLOAD:
            raise RequestEntityTooLargeException(
                f"Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the InvokeFunction operation"
            )
        config = self.resolve(request)
        if request.invocation_type is InvocationType.EVENT:
            raise NotImplementedException(
                "InvocationType Event (asynchronous invocation) is not supported by Shoal yet; "
                "use RequestResponse."
            )
        payload = request.payload if request.payload.strip() else b"{}"
        try:
            json.loads(payload)
        except ValueError as exc:
            raise InvalidRequestContentException(
                f"Could not parse request body into json: Could not parse payload into json: {exc}"
            ) from None
        request_id = request.request_id or ids.request_id()
        if request.invocation_type is InvocationType.DRY_RUN:
            return InvokeResult(204, request_id, executed_version=config.version)
        if config.last_update_status is UpdateStatus.FAILED:
            raise ResourceNotReadyException(
                f"The last update of the function failed: {config.last_update_status_reason}"
            )

        invocation = Invocation(
            request_id=request_id,
            payload=payload,
            invoked_arn=function_arn(self.region, config.account_id, config.name, request.qualifier),
            client_context=request.client_context,
        )
        for attempt in (1, 2):
            env = await self.pool.acquire(config)
            try:
                outcome = await env.invoke(invocation)
                break
            except EnvironmentGone:
                if attempt == 2:
                    raise
            finally:
                self.pool.release(env)
        log_result = None
        if request.tail_log:
            tail = ("\n".join(outcome.log_lines) + "\n").encode()[-TAIL_BYTES:]
            log_result = base64.b64encode(tail).decode()
        return InvokeResult(
            status_code=200,
            request_id=request_id,
            payload=outcome.payload,
            executed_version=config.version,
            function_error="Unhandled" if outcome.function_error else None,
            log_result=log_result,
        )

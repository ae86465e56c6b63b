"""Concurrency limits as Invoker middleware (spec §7): the account limit, reserved concurrency, throttling.

The lease is taken before an environment is chosen and released on every path. A function with reserved
concurrency R may run R invocations at once and never more; functions without a reservation share what the
account has left after every reservation (and every provisioned concurrency allocation outside one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal.core.arns import LATEST
from shoal.core.errors import TooManyRequestsException
from shoal.core.types import InvocationType, Invoker, InvokeRequest, InvokeResult
from shoal.store.catalog import FunctionCatalog

RETRY_AFTER_SECONDS = 1


def throttled(reason: str) -> TooManyRequestsException:
    return TooManyRequestsException.throttled(reason, RETRY_AFTER_SECONDS)


@dataclass
class ConcurrencyStats:
    """Counters for metrics: invocations running now (per function and in all), throttles by reason."""

    running: dict[tuple[str, str], int] = field(default_factory=dict)
    unreserved_running: dict[str, int] = field(default_factory=dict)
    throttles: dict[str, int] = field(default_factory=dict)
    peak: int = 0

    @property
    def total_running(self) -> int:
        return sum(self.running.values())


class ConcurrencyLimiter:
    def __init__(self, inner: Invoker, catalog: FunctionCatalog, account_limit: int) -> None:
        self.inner = inner
        self.catalog = catalog
        self.account_limit = account_limit
        self.stats = ConcurrencyStats()

    def unreserved_capacity(self, account_id: str) -> int:
        return self.account_limit - self.catalog.reserved_total(account_id)

    async def invoke(self, request: InvokeRequest) -> InvokeResult:
        if request.invocation_type is InvocationType.DRY_RUN:
            return await self.inner.invoke(request)
        key = (request.account_id, request.function_name)
        latest = self.catalog.get(request.account_id, request.function_name, LATEST)
        reserved = latest.reserved_concurrency if latest is not None else None
        running = self.stats.running.get(key, 0)
        unreserved = reserved is None
        if reserved is not None:
            if running >= reserved:
                self._count_throttle("ReservedFunctionConcurrentInvocationLimitExceeded")
                raise throttled("ReservedFunctionConcurrentInvocationLimitExceeded")
        elif self.stats.unreserved_running.get(request.account_id, 0) >= self.unreserved_capacity(
            request.account_id
        ):
            self._count_throttle("ConcurrentInvocationLimitExceeded")
            raise throttled("ConcurrentInvocationLimitExceeded")
        self.stats.running[key] = running + 1
        if unreserved:
            self.stats.unreserved_running[request.account_id] = (
                self.stats.unreserved_running.get(request.account_id, 0) + 1
            )
        self.stats.peak = max(self.stats.peak, self.stats.total_running)
        try:
            return await self.inner.invoke(request)
        finally:
            left = self.stats.running[key] - 1
            if left:
                self.stats.running[key] = left
            else:
                del self.stats.running[key]
            if unreserved:
                self.stats.unreserved_running[request.account_id] -= 1

    def _count_throttle(self, reason: str) -> None:
        self.stats.throttles[reason] = self.stats.throttles.get(reason, 0) + 1

"""Reserved concurrency (Put/Get/DeleteFunctionConcurrency) with the account's unreserved minimum."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shoal.control.functions import FunctionService
from shoal.control.validation import Problems
from shoal.core.arns import LATEST, FunctionRef
from shoal.core.errors import InvalidParameterValueException

UNRESERVED_MINIMUM = 100


class ConcurrencyService:
    def __init__(self, functions: FunctionService, account_limit: int) -> None:
        self.functions = functions
        self.catalog = functions.catalog
        self.account_limit = account_limit

    def minimum_unreserved(self) -> int:
        return UNRESERVED_MINIMUM if self.account_limit > UNRESERVED_MINIMUM else min(10, self.account_limit)

    def reserved_total(self, account_id: str, *, except_function: str | None = None) -> int:
        total = self.catalog.reserved_total(account_id)
        if except_function is not None:
            latest = self.catalog.get(account_id, except_function, LATEST)
            total -= (latest.reserved_concurrency or 0) if latest is not None else 0
        return total

    def get(self, account_id: str, ref: FunctionRef) -> int | None:
        return self.functions.get(account_id, FunctionRef(ref.name, ref.account_id)).reserved_concurrency

    async def put(self, account_id: str, ref: FunctionRef, body: Mapping[str, Any]) -> int:
        value = body.get("ReservedConcurrentExecutions")
        p = Problems()
        if value is None:
            p.add(None, "reservedConcurrentExecutions", "Member must not be null")
        elif isinstance(value, bool) or not isinstance(value, int):
            raise InvalidParameterValueException("ReservedConcurrentExecutions must be an integer.")
        elif value < 0:
            p.add(value, "reservedConcurrentExecutions", "Member must have value greater than or equal to 0")
        p.raise_if_any()
        assert isinstance(value, int)
        async with self.functions.lock(account_id, ref.name):
            latest = self.functions.get(account_id, FunctionRef(ref.name, ref.account_id))
            others = self.reserved_total(account_id, except_function=latest.name)
            minimum = self.minimum_unreserved()
            if self.account_limit - others - value < minimum:
                raise InvalidParameterValueException(
                    "Specified ReservedConcurrentExecutions for function decreases account's "
                    f"UnreservedConcurrentExecution below its minimum value of [{minimum}]."
                )
            await self.catalog.put(latest.evolve(reserved_concurrency=value))
        return value

    async def delete(self, account_id: str, ref: FunctionRef) -> None:
        async with self.functions.lock(account_id, ref.name):
            latest = self.functions.get(account_id, FunctionRef(ref.name, ref.account_id))
            if latest.reserved_concurrency is not None:
                await self.catalog.put(latest.evolve(reserved_concurrency=None))

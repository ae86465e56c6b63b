"""Tags on functions (TagResource, UntagResource, ListTags; ``Tags`` on CreateFunction)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from shoal.control.functions import FunctionService
from shoal.control.validation import Problems
from shoal.core.arns import LATEST, FunctionRef
from shoal.core.errors import InvalidParameterValueException

MAX_TAGS = 50
_FUNCTION_ARN_RE = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d:(?P<account>\d{12}):function:"
    r"(?P<name>[a-zA-Z0-9-_]+)(:(?P<qualifier>[a-zA-Z0-9$_-]+))?"
)


def check_tags(tags: object) -> dict[str, str]:
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise InvalidParameterValueException("Tags must map tag keys to string values.")
    p = Problems()
    for key, value in tags.items():
        if not 1 <= len(key) <= 128:
            p.add(
                key,
                "tags",
                "Map keys must satisfy constraint: [Member must have length less than or equal to 128]",
            )
        if len(value) > 256:
            p.add(
                value,
                "tags",
                "Map value must satisfy constraint: [Member must have length less than or equal to 256]",
            )
    p.raise_if_any()
    if any(key.lower().startswith("aws:") for key in tags):
        raise InvalidParameterValueException("Tag keys starting with 'aws:' are reserved for AWS use.")
    return dict(tags)


class TagService:
    def __init__(self, functions: FunctionService) -> None:
        self.functions = functions
        self.catalog = functions.catalog

    def _function(self, account_id: str, resource_arn: str) -> FunctionRef:
        m = _FUNCTION_ARN_RE.fullmatch(resource_arn)
        if m is None:
            raise InvalidParameterValueException(
                f"Invalid resource ARN: {resource_arn}. Specify a function ARN."
            )
        if m.group("qualifier"):
            raise InvalidParameterValueException(
                "Tags on function aliases and versions are not supported. Please specify a function ARN."
            )
        return FunctionRef(m.group("name"), m.group("account"))

    def tags(self, account_id: str, resource_arn: str) -> dict[str, str]:
        latest = self.functions.get(account_id, self._function(account_id, resource_arn))
        return dict(latest.extra.get("Tags") or {})

    async def tag(self, account_id: str, resource_arn: str, tags: Mapping[str, str]) -> None:
        new = check_tags(tags)
        ref = self._function(account_id, resource_arn)
        async with self.functions.lock(account_id, ref.name):
            latest = self.functions.get(account_id, ref)
            merged = {**(latest.extra.get("Tags") or {}), **new}
            if len(merged) > MAX_TAGS:
                raise InvalidParameterValueException(f"A function can have at most {MAX_TAGS} tags.")
            await self.catalog.put(latest.evolve(extra={**latest.extra, "Tags": merged}))

    async def untag(self, account_id: str, resource_arn: str, keys: list[str]) -> None:
        ref = self._function(account_id, resource_arn)
        async with self.functions.lock(account_id, ref.name):
            latest = self.functions.get(account_id, ref)
            assert latest.version == LATEST
            remaining = {k: v for k, v in (latest.extra.get("Tags") or {}).items() if k not in keys}
            extra = (
                {**latest.extra, "Tags": remaining}
                if remaining
                else {k: v for k, v in latest.extra.items() if k != "Tags"}
            )
            await self.catalog.put(latest.evolve(extra=extra))

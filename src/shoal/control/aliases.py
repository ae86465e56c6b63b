"""Aliases: names pointing at a version, optionally routing a share of traffic to a second one (spec §1.3)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from shoal.control.functions import FunctionService
from shoal.control.paging import offset_page
from shoal.control.validation import Problems
from shoal.core import ids
from shoal.core.arns import LATEST, FunctionRef, function_arn
from shoal.core.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from shoal.core.types import Alias

ALIAS_NAME_PATTERN = r"(?!^[0-9]+$)([a-zA-Z0-9-_]+)"
_VERSION_RE = re.compile(r"\$LATEST|[0-9]+")


@dataclass(frozen=True)
class AliasPage:
    aliases: list[Alias]
    next_marker: str | None


class AliasService:
    def __init__(self, functions: FunctionService) -> None:
        self.functions = functions
        self.catalog = functions.catalog
        self.region = functions.region

    def arn(self, alias: Alias) -> str:
        return function_arn(self.region, alias.account_id, alias.function_name, alias.name)

    def render(self, alias: Alias) -> dict[str, Any]:
        out: dict[str, Any] = {
            "AliasArn": self.arn(alias),
            "Name": alias.name,
            "FunctionVersion": alias.function_version,
            "Description": alias.description,
            "RevisionId": alias.revision_id,
        }
        if alias.additional_version is not None:
            out["RoutingConfig"] = {
                "AdditionalVersionWeights": {alias.additional_version: alias.additional_weight}
            }
        return out

    # ---- reads ----------------------------------------------------------------------------------------

    def get(self, account_id: str, ref: FunctionRef, name: str) -> Alias:
        latest = self.functions.get(account_id, FunctionRef(ref.name, ref.account_id))
        alias = self.catalog.alias(account_id, latest.name, name)
        if alias is None:
            raise ResourceNotFoundException(
                f"Alias not found: {function_arn(self.region, account_id, latest.name, name)}"
            )
        return alias

    def page(
        self,
        account_id: str,
        ref: FunctionRef,
        version: str | None,
        marker: str | None,
        max_items: int | None,
    ) -> AliasPage:
        latest = self.functions.get(account_id, FunctionRef(ref.name, ref.account_id))
        found = [
            a
            for a in self.catalog.aliases(account_id, latest.name)
            if version is None or version in (a.function_version, a.additional_version)
        ]
        return AliasPage(*offset_page(found, marker, max_items))

    # ---- writes ---------------------------------------------------------------------------------------

    async def create(self, account_id: str, ref: FunctionRef, body: Mapping[str, Any]) -> Alias:
        p = Problems()
        name, version = body.get("Name"), body.get("FunctionVersion")
        if name is None:
            p.add(None, "name", "Member must not be null")
        if version is None:
            p.add(None, "functionVersion", "Member must not be null")
        p.raise_if_any()
        self._check_name(p, name)
        self._check_description(p, body.get("Description"))
        p.raise_if_any()
        async with self.functions.lock(account_id, ref.name):
            latest = self.functions.get(account_id, FunctionRef(ref.name, ref.account_id))
            routing = self._routing(account_id, latest.name, str(version), body.get("RoutingConfig"))
            self._check_version(account_id, latest.name, str(version))
            alias = Alias(
                account_id=account_id,
                function_name=latest.name,
                name=str(name),
                function_version=str(version),
                revision_id=ids.revision_id(),
                description=body.get("Description") or "",
                additional_version=routing[0] if routing else None,
                additional_weight=routing[1] if routing else 0.0,
            )
            if self.catalog.alias(account_id, latest.name, alias.name) is not None:
                raise ResourceConflictException(f"Alias already exists: {self.arn(alias)}")
            await self.catalog.put_alias(alias, create=True)
        return alias

    async def update(self, account_id: str, ref: FunctionRef, name: str, body: Mapping[str, Any]) -> Alias:
        p = Problems()
        self._check_description(p, body.get("Description"))
        p.raise_if_any()
        async with self.functions.lock(account_id, ref.name):
            current = self.get(account_id, ref, name)
            if body.get("RevisionId") is not None and body["RevisionId"] != current.revision_id:
                raise PreconditionFailedException(
                    "The Revision Id provided does not match the latest Revision Id. "
                    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
                )
            version = str(body.get("FunctionVersion") or current.function_version)
            self._check_version(account_id, current.function_name, version)
            if "RoutingConfig" in body:
                routing = self._routing(account_id, current.function_name, version, body.get("RoutingConfig"))
            elif current.additional_version is not None:
                routing = self._routing(
                    account_id,
                    current.function_name,
                    version,
                    {"AdditionalVersionWeights": {current.additional_version: current.additional_weight}},
                )
            else:
                routing = None
            alias = replace(
                current,
                function_version=version,
                description=body["Description"]
                if body.get("Description") is not None
                else current.description,
                additional_version=routing[0] if routing else None,
                additional_weight=routing[1] if routing else 0.0,
                revision_id=ids.revision_id(),
            )
            await self.catalog.put_alias(alias)
        return alias

    async def delete(self, account_id: str, ref: FunctionRef, name: str) -> None:
        async with self.functions.lock(account_id, ref.name):
            latest = self.functions.get(account_id, FunctionRef(ref.name, ref.account_id))
            alias = self.catalog.alias(account_id, latest.name, name)
            if alias is not None:  # deleting a missing alias succeeds, as on AWS
                await self.catalog.delete_alias(alias)

    # ---- validation -----------------------------------------------------------------------------------

    @staticmethod
    def _check_name(p: Problems, name: object) -> None:
        if (
            not isinstance(name, str)
            or not 1 <= len(name) <= 128
            or not re.fullmatch(ALIAS_NAME_PATTERN, name)
        ):
            p.add(name, "name", f"Member must satisfy regular expression pattern: {ALIAS_NAME_PATTERN}")

    @staticmethod
    def _check_description(p: Problems, description: object) -> None:
        if description is not None and (not isinstance(description, str) or len(description) > 256):
            p.add(description, "description", "Member must have length less than or equal to 256")

    def _check_version(self, account_id: str, function_name: str, version: str) -> None:
        if not _VERSION_RE.fullmatch(version):
            raise InvalidParameterValueException(f"Invalid function version {version}.")
        if self.catalog.get(account_id, function_name, version) is None:
            raise ResourceNotFoundException(
                f"Function not found: {function_arn(self.region, account_id, function_name, version)}"
            )

    def _routing(
        self, account_id: str, function_name: str, version: str, routing: object
    ) -> tuple[str, float] | None:
        """Validate ``RoutingConfig`` (spec §1.3 rules); (additional version, weight) or None."""
        if routing is None:
            return None
        if not isinstance(routing, dict):
            raise InvalidParameterValueException(
                "RoutingConfig must be an object with AdditionalVersionWeights."
            )
        weights = routing.get("AdditionalVersionWeights") or {}
        if not isinstance(weights, dict):
            raise InvalidParameterValueException("AdditionalVersionWeights must map a version to a weight.")
        if not weights:
            return None
        if len(weights) > 1:
            raise InvalidParameterValueException(
                "Number of items in AdditionalVersionWeights cannot be greater than 1"
            )
        ((extra, weight),) = weights.items()
        p = Problems()
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0.0 <= weight <= 1.0:
            p.add(
                weight,
                f"routingConfig.additionalVersionWeights.{extra}",
                "Member must have value between 0.0 and 1.0",
            )
        if not re.fullmatch(r"[0-9]+", str(extra)):
            p.add(
                extra,
                "routingConfig.additionalVersionWeights",
                "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [0-9]+]",
            )
        p.raise_if_any()
        if version == LATEST:
            raise InvalidParameterValueException(
                "$LATEST is not supported for an alias pointing to more than 1 version"
            )
        if extra == version:
            raise InvalidParameterValueException(
                f"Invalid function version {extra}. Function version {extra} is already included in routing "
                "configuration."
            )
        self._check_version(account_id, function_name, str(extra))
        primary = self.catalog.get(account_id, function_name, version)
        secondary = self.catalog.get(account_id, function_name, str(extra))
        if primary is not None and secondary is not None:
            if primary.role != secondary.role:
                raise InvalidParameterValueException(
                    "The function versions in the routing configuration must use the same execution role."
                )
            if primary.dead_letter_target != secondary.dead_letter_target:
                raise InvalidParameterValueException(
                    "The function versions in the routing configuration must use the same dead-letter queue "
                    "configuration."
                )
        return str(extra), float(weight)

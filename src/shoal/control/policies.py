"""Resource-based policies of functions (AddPermission, GetPolicy, RemovePermission) and their enforcement
for callers from other accounts."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from shoal.control.functions import FunctionService
from shoal.control.validation import Problems
from shoal.core import ids
from shoal.core.arns import LATEST, FunctionRef, function_arn
from shoal.core.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from shoal.core.types import Policy

MAX_POLICY_BYTES = 20 * 1024
_SID_RE = re.compile(r"[a-zA-Z0-9-_]{1,100}")
_ACTION_RE = re.compile(r"(lambda:[*]|lambda:[a-zA-Z]+|[*])")


class PolicyLengthExceededException(InvalidParameterValueException):
    code = "PolicyLengthExceededException"


def _principal(principal: str) -> Any:
    if principal == "*":
        return "*"
    if re.fullmatch(r"\d{12}", principal):
        return {"AWS": f"arn:aws:iam::{principal}:root"}
    if principal.startswith("arn:"):
        return {"AWS": principal}
    return {"Service": principal}


class PolicyService:
    def __init__(self, functions: FunctionService) -> None:
        self.functions = functions
        self.catalog = functions.catalog
        self.region = functions.region

    def _target(self, account_id: str, ref: FunctionRef) -> tuple[str, str]:
        """(function name, qualifier key) — the policy of ``$LATEST`` is the function's own ("")."""
        config, alias = self.functions.resolve(account_id, ref)
        qualifier = alias.name if alias is not None else ("" if config.version == LATEST else config.version)
        return config.name, qualifier

    def _resource(self, account_id: str, name: str, qualifier: str) -> str:
        return function_arn(self.region, account_id, name, qualifier or None)

    async def add(self, account_id: str, ref: FunctionRef, body: Mapping[str, Any]) -> dict[str, Any]:
        if ref.qualifier == LATEST:
            raise InvalidParameterValueException("We currently do not support adding policies for $LATEST.")
        p = Problems()
        for member in ("StatementId", "Action", "Principal"):
            if not body.get(member):
                p.add(None, member[0].lower() + member[1:], "Member must not be null")
        p.raise_if_any()
        sid, action, principal = str(body["StatementId"]), str(body["Action"]), str(body["Principal"])
        if not _SID_RE.fullmatch(sid):
            p.add(sid, "statementId", "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)")
        if not _ACTION_RE.fullmatch(action):
            p.add(
                action,
                "action",
                "Member must satisfy regular expression pattern: (lambda:[*]|lambda:[a-zA-Z]+|[*])",
            )
        p.raise_if_any()
        async with self.functions.lock(account_id, ref.name):
            name, qualifier = self._target(account_id, ref)
            current = self.catalog.policy(account_id, name, qualifier)
            if body.get("RevisionId") is not None and (
                current is None or body["RevisionId"] != current.revision_id
            ):
                raise PreconditionFailedException(
                    "The Revision Id provided does not match the latest Revision Id. "
                    "Call the GetPolicy API to retrieve the latest Revision Id"
                )
            statements = list(current.statements) if current else []
            if any(s["Sid"] == sid for s in statements):
                raise ResourceConflictException(
                    f"The statement id ({sid}) provided already exists. "
                    "Please provide a new statement id, or remove the existing statement."
                )
            statement: dict[str, Any] = {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": _principal(principal),
                "Action": action,
                "Resource": self._resource(account_id, name, qualifier),
            }
            condition: dict[str, dict[str, str]] = {}
            if body.get("SourceAccount"):
                condition.setdefault("StringEquals", {})["AWS:SourceAccount"] = str(body["SourceAccount"])
            if body.get("EventSourceToken"):
                condition.setdefault("StringEquals", {})["lambda:EventSourceToken"] = str(
                    body["EventSourceToken"]
                )
            if body.get("PrincipalOrgID"):
                condition.setdefault("StringEquals", {})["aws:PrincipalOrgID"] = str(body["PrincipalOrgID"])
            if body.get("FunctionUrlAuthType"):
                condition.setdefault("StringEquals", {})["lambda:FunctionUrlAuthType"] = str(
                    body["FunctionUrlAuthType"]
                )
            if body.get("SourceArn"):
                condition.setdefault("ArnLike", {})["AWS:SourceArn"] = str(body["SourceArn"])
            if condition:
                statement["Condition"] = condition
            statements.append(statement)
            policy = Policy(account_id, name, qualifier, tuple(statements), ids.revision_id())
            if len(self._document(policy)) > MAX_POLICY_BYTES:
                raise PolicyLengthExceededException("The final policy size is bigger than the limit (20480).")
            await self.catalog.put_policy(policy)
        return statement

    def _document(self, policy: Policy) -> str:
        return json.dumps(
            {"Version": "2012-10-17", "Id": "default", "Statement": list(policy.statements)},
            separators=(",", ":"),
        )

    def get(self, account_id: str, ref: FunctionRef) -> tuple[str, str]:
        name, qualifier = self._target(account_id, ref)
        policy = self.catalog.policy(account_id, name, qualifier)
        if policy is None:
            raise ResourceNotFoundException("The resource you requested does not exist.")
        return self._document(policy), policy.revision_id

    async def remove(self, account_id: str, ref: FunctionRef, sid: str, revision_id: str | None) -> None:
        async with self.functions.lock(account_id, ref.name):
            name, qualifier = self._target(account_id, ref)
            policy = self.catalog.policy(account_id, name, qualifier)
            if policy is None or not any(s["Sid"] == sid for s in policy.statements):
                raise ResourceNotFoundException(f"Statement {sid} is not found in resource policy.")
            if revision_id is not None and revision_id != policy.revision_id:
                raise PreconditionFailedException(
                    "The Revision Id provided does not match the latest Revision Id. "
                    "Call the GetPolicy API to retrieve the latest Revision Id"
                )
            remaining = tuple(s for s in policy.statements if s["Sid"] != sid)
            await self.catalog.put_policy(Policy(account_id, name, qualifier, remaining, ids.revision_id()))

    def allows(self, account_id: str, name: str, qualifier: str, caller_account: str, action: str) -> bool:
        """Whether the function's (or the alias/version's) policy lets ``caller_account`` do ``action``."""
        for key in {qualifier, ""} if qualifier else {""}:
            policy = self.catalog.policy(account_id, name, key)
            for statement in policy.statements if policy else ():
                if statement["Action"] not in (action, "lambda:*", "*"):
                    continue
                who = statement["Principal"]
                aws = who.get("AWS") if isinstance(who, dict) else None
                if who == "*" or aws in (f"arn:aws:iam::{caller_account}:root", caller_account):
                    return True
                if isinstance(aws, str) and aws.startswith(f"arn:aws:iam::{caller_account}:"):
                    return True
        return False

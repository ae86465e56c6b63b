"""Function names, qualifiers and ARNs (spec §1.3, §11)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shoal.core.errors import InvalidParameterValueException, ValidationException

LATEST = "$LATEST"

FUNCTION_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?"
    r"([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)
_FUNCTION_NAME_RE = re.compile(FUNCTION_NAME_PATTERN)
_ARN_RE = re.compile(
    r"arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:(?P<region>[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}):"
    r"(?P<account>\d{12}):function:(?P<name>[a-zA-Z0-9-_]+)(:(?P<qualifier>\$LATEST|[a-zA-Z0-9-_]+))?"
)
_PARTIAL_RE = re.compile(
    r"(?P<account>\d{12}):function:(?P<name>[a-zA-Z0-9-_]+)(:(?P<qualifier>\$LATEST|[a-zA-Z0-9-_]+))?"
)
_PLAIN_RE = re.compile(r"(?P<name>[a-zA-Z0-9-_]+)(:(?P<qualifier>\$LATEST|[a-zA-Z0-9-_]+))?")
QUALIFIER_RE = re.compile(r"[a-zA-Z0-9$_-]+")


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """What a ``FunctionName`` parameter named: the name, and the account and qualifier if it said them."""

    name: str
    account_id: str | None = None
    qualifier: str | None = None


def parse_function_ref(value: str, *, query_qualifier: str | None = None, max_len: int = 140) -> FunctionRef:
    """Parse a name, ``name:qualifier``, a partial ARN or a full ARN.

    Raises ``ValidationException`` with AWS's wording when the value does not match the model's pattern, and
    ``InvalidParameterValueException`` when the path and ``?Qualifier=`` disagree.
    """
    if not value or len(value) > max_len or not _FUNCTION_NAME_RE.fullmatch(value):
        constraint = (
            f"Member must have length less than or equal to {max_len}"
            if len(value) > max_len
            else f"Member must satisfy regular expression pattern: {FUNCTION_NAME_PATTERN}"
        )
        raise ValidationException.of(
            [f"Value '{value}' at 'functionName' failed to satisfy constraint: {constraint}"]
        )
    m = _ARN_RE.fullmatch(value) or _PARTIAL_RE.fullmatch(value) or _PLAIN_RE.fullmatch(value)
    if m is None:  # matched the loose model pattern but none of the shapes AWS accepts (e.g. "function:x")
        raise InvalidParameterValueException(f"Invalid function name: {value}")
    groups = m.groupdict()
    qualifier = groups.get("qualifier")
    if query_qualifier is not None and query_qualifier != "":
        if not QUALIFIER_RE.fullmatch(query_qualifier) or len(query_qualifier) > 128:
            raise ValidationException.of(
                [
                    f"Value '{query_qualifier}' at 'qualifier' failed to satisfy constraint: "
                    "Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)"
                ]
            )
        if qualifier is not None and qualifier != query_qualifier:
            raise InvalidParameterValueException(
                "The derived qualifier from the function name does not match the specified qualifier."
            )
        qualifier = query_qualifier
    return FunctionRef(name=groups["name"], account_id=groups.get("account"), qualifier=qualifier)


def function_arn(region: str, account_id: str, name: str, qualifier: str | None = None) -> str:
    base = f"arn:aws:lambda:{region}:{account_id}:function:{name}"
    return f"{base}:{qualifier}" if qualifier else base


def role_is_valid(role: str) -> bool:
    return re.fullmatch(r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+", role) is not None

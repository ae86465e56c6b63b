"""CloudWatch Logs JSON 1.1 API (``X-Amz-Target: Logs_20140328.<Operation>``, spec §5.4), read side only.

Served: ``FilterLogEvents``, ``GetLogEvents``, ``DescribeLogStreams`` and ``DescribeLogGroups`` — what
``aws logs tail [--follow]``, ``aws logs get-log-events``, ``sam logs`` and consoles need. Function logs are
written by Shoal itself (log group ``/aws/lambda/<name>``), so the write operations (``CreateLogGroup``,
``PutLogEvents`` …) answer ``UnknownOperationException`` naming the operation.

Wire shapes: ``POST /`` with a JSON body; answers ``application/x-amz-json-1.1`` with ``x-amzn-RequestId``;
errors are HTTP 400 with ``{"__type": "<Code>", "message": "…"}`` and the header ``x-amzn-ErrorType``.
Times are epoch milliseconds.

Differences from AWS, on purpose or not yet done:

* ``storedBytes`` of a log *stream* is always 0 (AWS deprecated it in 2019 and reports 0); a log *group*
  reports its bytes on disk.
* Tokens are opaque to clients but not encrypted or expiring; a token from another query is not detected.
* Filter patterns: see :func:`compile_pattern` for the supported subset.
* ``FilterLogEvents`` lists every stream it read in ``searchedLogStreams``, with ``searchedCompletely`` true.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import heapq
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from shoal.api.call import Services
from shoal.logs.store import FileLogStore, LogEvent, StreamInfo

log = logging.getLogger("shoal.api.logs")

CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_BODY = 1_048_576
MAX_RESPONSE_BYTES = 1_048_576  # AWS: a page holds at most 1 MB of events ...
EVENT_OVERHEAD = 26  # ... counted as UTF-8 message bytes plus 26 bytes per event
GROUP_NOT_FOUND = "The specified log group does not exist."
STREAM_NOT_FOUND = "The specified log stream does not exist."


class LogsError(Exception):
    """An error rendered as the JSON 1.1 error envelope."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _invalid(message: str) -> LogsError:
    return LogsError("InvalidParameterException", message)


def _response(data: dict[str, Any], rid: str, status: int = 200, error: str | None = None) -> Response:
    headers = {"x-amzn-RequestId": rid}
    if error is not None:
        headers["x-amzn-ErrorType"] = error
    return Response(json.dumps(data, ensure_ascii=False), status, media_type=CONTENT_TYPE, headers=headers)


def _error(exc: LogsError, rid: str) -> Response:
    return _response({"__type": exc.code, "message": exc.message}, rid, exc.status, exc.code)


# ---- request parsing ---------------------------------------------------------------------------------


class Params:
    """Typed access to a request's members, collecting AWS-worded constraint violations."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.problems: list[str] = []

    def _bad(self, name: str, value: object, constraint: str) -> None:
        self.problems.append(f"Value '{value}' at '{name}' failed to satisfy constraint: {constraint}")

    def string(self, name: str, *, min_len: int = 1, max_len: int = 1_000_000) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            self._bad(name, value, "Member must be a string")
            return None
        if len(value) < min_len:
            self._bad(name, value, f"Member must have length greater than or equal to {min_len}")
        elif len(value) > max_len:
            self._bad(name, value, f"Member must have length less than or equal to {max_len}")
        return value

    def integer(self, name: str, *, low: int = 0, high: int | None = None) -> int | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self._bad(name, value, "Member must be a number")
            return None
        if value < low:
            self._bad(name, value, f"Member must have value greater than or equal to {low}")
        elif high is not None and value > high:
            self._bad(name, value, f"Member must have value less than or equal to {high}")
        return value

    def boolean(self, name: str) -> bool | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, bool):
            self._bad(name, value, "Member must be a boolean")
            return None
        return value

    def strings(self, name: str, *, max_items: int) -> list[str] | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self._bad(name, value, "Member must be a list of strings")
            return None
        if not 1 <= len(value) <= max_items:
            self._bad(name, value, f"Member must have length between 1 and {max_items}")
        return value

    def check(self) -> None:
        if self.problems:
            n = len(self.problems)
            head = f"{n} validation error{'s' if n != 1 else ''} detected: "
            raise _invalid(head + "; ".join(self.problems))


def group_name_of(p: Params, account: str) -> str:
    """The log group named by ``logGroupName`` or ``logGroupIdentifier`` (a name or a log-group ARN)."""
    name = p.string("logGroupName", max_len=512)
    ident = p.string("logGroupIdentifier", max_len=2048)
    p.check()
    if name is not None and ident is not None:
        raise _invalid("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
    if name is not None:
        return name
    if ident is None:
        raise _invalid("Should provide either name or ARN of the log group.")
    if not ident.startswith("arn:"):
        return ident
    parts = ident.split(":", 6)
    if len(parts) != 7 or parts[2] != "logs" or parts[5] != "log-group" or not parts[6]:
        raise _invalid(f"Invalid log group ARN: {ident}")
    if parts[4] != account:
        raise LogsError("ResourceNotFoundException", GROUP_NOT_FOUND)
    return parts[6].removesuffix(":*")


def group_arn(region: str, account: str, group: str) -> str:
    return f"arn:aws:logs:{region}:{account}:log-group:{group}"


# ---- filter patterns ---------------------------------------------------------------------------------

_UNSUPPORTED_START = ("{", "[")


def _tokens(pattern: str) -> Iterator[str]:
    """Split on whitespace, keeping double-quoted phrases (with ``\\"`` escapes) together with any prefix."""
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i].isspace():
            i += 1
            continue
        out: list[str] = []
        while i < n and not pattern[i].isspace():
            if pattern[i] == '"':
                out.append('"')
                i += 1
                while i < n and pattern[i] != '"':
                    if pattern[i] == "\\" and i + 1 < n:
                        i += 1
                    out.append(pattern[i])
                    i += 1
                if i >= n:
                    raise _invalid(f"Invalid filter pattern: unterminated quote in {pattern!r}")
                out.append('"')
                i += 1
            else:
                out.append(pattern[i])
                i += 1
        yield "".join(out)


def _term(token: str) -> str:
    if len(token) >= 2 and token[0] == '"' and token[-1] == '"':
        return token[1:-1]
    return token


def compile_pattern(pattern: str | None) -> Callable[[str], bool]:
    """A predicate for a CloudWatch Logs filter pattern over unstructured log events.

    Supported (matching is case-sensitive, a term matches anywhere in the message):

    * empty pattern or ``""`` — every event;
    * ``ERROR Exception`` — every term must appear;
    * ``"quoted phrase"`` — the phrase must appear as written;
    * ``?ERROR ?WARN`` — at least one ``?``-term must appear (combined with plain terms, both must hold);
    * ``-term`` / ``-"phrase"`` — the term must not appear;
    * ``%regular expression%`` — the whole pattern is a regular expression (Python syntax, a superset of
      the AWS subset).

    Not supported, rejected with ``InvalidParameterException``: JSON patterns (``{ $.level = "ERROR" }``),
    space-delimited patterns (``[ip, user, …]``), and metric-filter numeric comparisons.
    """
    text = (pattern or "").strip()
    if not text or text == '""':
        return lambda _message: True
    if len(text) >= 2 and text[0] == "%" and text[-1] == "%":
        try:
            regex = re.compile(text[1:-1])
        except re.error as exc:
            raise _invalid(f"Invalid filter pattern: bad regular expression: {exc}") from None
        return lambda message: regex.search(message) is not None
    if text.startswith(_UNSUPPORTED_START):
        raise _invalid(
            'Shoal supports unstructured filter patterns only (terms, "phrases", ?any, -exclude, %regex%); '
            f"JSON and space-delimited patterns are not supported: {text!r}"
        )
    required: list[str] = []
    anyof: list[str] = []
    excluded: list[str] = []
    for token in _tokens(text):
        if token.startswith("?") and len(token) > 1:
            anyof.append(_term(token[1:]))
        elif token.startswith("-") and len(token) > 1:
            excluded.append(_term(token[1:]))
        else:
            required.append(_term(token))

    def matches(message: str) -> bool:
        if any(t not in message for t in required):
            return False
        if any(t in message for t in excluded):
            return False
        return not anyof or any(t in message for t in anyof)

    return matches


# ---- tokens ------------------------------------------------------------------------------------------


def encode_token(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise _invalid("The specified nextToken is invalid.") from None


def _event_size(message: str) -> int:
    return len(message.encode("utf-8")) + EVENT_OVERHEAD


# ---- FilterLogEvents ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterQuery:
    group: str
    streams: list[str] | None
    prefix: str | None
    start: int | None
    end: int | None
    matches: Callable[[str], bool]
    after: tuple[int, str] | None
    limit: int


def filter_events(store: FileLogStore, account: str, q: FilterQuery) -> dict[str, Any]:
    """Runs in a worker thread: reads the group's files and picks one page, sorted by (timestamp, eventId)."""
    if not store.has_group(account, q.group):
        raise LogsError("ResourceNotFoundException", GROUP_NOT_FOUND)
    searched: list[str] = []

    def candidates() -> Iterator[LogEvent]:
        current = None
        for ev in store.events(account, q.group, q.streams):
            if q.prefix is not None and not ev.stream.startswith(q.prefix):
                continue
            if ev.stream != current:
                current = ev.stream
                searched.append(ev.stream)
            if q.start is not None and ev.timestamp < q.start:
                continue
            if q.end is not None and ev.timestamp > q.end:
                continue
            if q.after is not None and (ev.timestamp, ev.event_id) <= q.after:
                continue
            if q.matches(ev.message):
                yield ev

    # one more than a page tells whether there is a next page; memory stays bounded by the limit
    page = heapq.nsmallest(q.limit + 1, candidates(), key=lambda ev: (ev.timestamp, ev.event_id))
    events: list[dict[str, Any]] = []
    size = 0
    for ev in page[: q.limit]:
        size += _event_size(ev.message)
        if events and size > MAX_RESPONSE_BYTES:
            break
        events.append(
            {
                "logStreamName": ev.stream,
                "timestamp": ev.timestamp,
                "message": ev.message,
                "ingestionTime": ev.ingestion_time,
                "eventId": ev.event_id,
            }
        )
    out: dict[str, Any] = {
        "events": events,
        "searchedLogStreams": [{"logStreamName": s, "searchedCompletely": True} for s in searched],
    }
    if len(events) < len(page):
        last = events[-1]
        out["nextToken"] = encode_token({"t": last["timestamp"], "e": last["eventId"]})
    return out


async def filter_log_events(p: Params, services: Services, account: str) -> dict[str, Any]:
    group = group_name_of(p, account)
    streams = p.strings("logStreamNames", max_items=100)
    prefix = p.string("logStreamNamePrefix", max_len=512)
    start = p.integer("startTime")
    end = p.integer("endTime")
    pattern = p.string("filterPattern", min_len=0, max_len=1024)
    token = p.string("nextToken")
    limit = p.integer("limit", low=1, high=10_000)
    p.boolean("interleaved")
    p.boolean("unmask")
    p.check()
    if streams is not None and prefix is not None:
        raise _invalid("Cannot specify both logStreamNames and logStreamNamePrefix.")
    if start is not None and end is not None and end < start:
        raise _invalid("endTime must be greater than or equal to startTime.")
    after = None
    if token is not None:
        data = decode_token(token)
        if not (isinstance(data, dict) and isinstance(data.get("t"), int) and isinstance(data.get("e"), str)):
            raise _invalid("The specified nextToken is invalid.")
        after = (data["t"], data["e"])
    query = FilterQuery(group, streams, prefix, start, end, compile_pattern(pattern), after, limit or 10_000)
    return await asyncio.to_thread(filter_events, services.logs, account, query)


# ---- GetLogEvents ------------------------------------------------------------------------------------

TOKEN_DIGITS = 56


def _position_token(direction: str, position: int) -> str:
    return f"{direction}/{position:0{TOKEN_DIGITS}d}"


def _parse_position(token: str) -> tuple[str, int]:
    direction, sep, digits = token.partition("/")
    if not sep or direction not in ("f", "b") or not digits.isdigit():
        raise _invalid("The specified nextToken is invalid.")
    return direction, int(digits)


def get_events(
    store: FileLogStore,
    account: str,
    group: str,
    stream: str,
    start: int | None,
    end: int | None,
    token: str | None,
    limit: int,
    from_head: bool,
) -> dict[str, Any]:
    """Runs in a worker thread. A token is a position in the store (stable, increasing along the stream)."""
    if not store.has_group(account, group):
        raise LogsError("ResourceNotFoundException", GROUP_NOT_FOUND)
    all_events = list(store.events(account, group, [stream]))
    if not all_events:
        raise LogsError("ResourceNotFoundException", STREAM_NOT_FOUND)
    indexed = [
        (ev.position, ev)
        for ev in all_events
        if (start is None or ev.timestamp >= start) and (end is None or ev.timestamp < end)
    ]
    if token is not None:
        direction, position = _parse_position(token)
    elif from_head:
        direction, position = "f", 0
    else:
        direction, position = "b", all_events[-1].position + 1
    chosen: list[tuple[int, LogEvent]] = []
    size = 0
    if direction == "f":
        for i, ev in indexed:
            if i < position:
                continue
            size += _event_size(ev.message)
            if len(chosen) >= limit or (chosen and size > MAX_RESPONSE_BYTES):
                break
            chosen.append((i, ev))
    else:
        for i, ev in reversed(indexed):
            if i >= position:
                continue
            size += _event_size(ev.message)
            if len(chosen) >= limit or (chosen and size > MAX_RESPONSE_BYTES):
                break
            chosen.append((i, ev))
        chosen.reverse()
    if chosen:
        forward, backward = chosen[-1][0] + 1, chosen[0][0]
    else:  # nothing (more) in this direction: hand back the same position, which ends the client's loop
        forward = backward = position
    return {
        "events": [
            {"timestamp": ev.timestamp, "message": ev.message, "ingestionTime": ev.ingestion_time}
            for _, ev in chosen
        ],
        "nextForwardToken": _position_token("f", forward),
        "nextBackwardToken": _position_token("b", backward),
    }


async def get_log_events(p: Params, services: Services, account: str) -> dict[str, Any]:
    group = group_name_of(p, account)
    stream = p.string("logStreamName", max_len=512)
    start = p.integer("startTime")
    end = p.integer("endTime")
    token = p.string("nextToken")
    limit = p.integer("limit", low=1, high=10_000)
    from_head = p.boolean("startFromHead")
    p.boolean("unmask")
    if stream is None:
        p.problems.append(
            "Value null at 'logStreamName' failed to satisfy constraint: Member must not be null"
        )
    p.check()
    assert stream is not None
    if token is not None:
        _parse_position(token)  # reject a malformed token before touching the disk
    return await asyncio.to_thread(
        get_events, services.logs, account, group, stream, start, end, token, limit or 10_000, bool(from_head)
    )


# ---- DescribeLogStreams / DescribeLogGroups ----------------------------------------------------------


def _page(
    items: list[Any], key: Callable[[Any], Any], token: str | None, limit: int, descending: bool = False
) -> tuple[list[Any], str | None]:
    """Sort by ``key`` and return the page after the key stored in ``token`` (keys must be unique)."""
    items = sorted(items, key=key, reverse=descending)
    if token is not None:
        after = decode_token(token)
        if not isinstance(after, list):
            raise _invalid("The specified nextToken is invalid.")
        after = tuple(after)
        try:
            items = [it for it in items if (key(it) < after if descending else key(it) > after)]
        except TypeError:
            raise _invalid("The specified nextToken is invalid.") from None
    page = items[:limit]
    next_token = encode_token(list(key(page[-1]))) if len(items) > limit else None
    return page, next_token


def _upload_sequence_token(info: StreamInfo) -> str:
    return f"49{info.stored_bytes:054d}"


def describe_streams(
    store: FileLogStore,
    account: str,
    region: str,
    group: str,
    prefix: str | None,
    by_time: bool,
    descending: bool,
    token: str | None,
    limit: int,
) -> dict[str, Any]:
    if not store.has_group(account, group):
        raise LogsError("ResourceNotFoundException", GROUP_NOT_FOUND)
    infos = [s for s in store.streams(account, group) if prefix is None or s.name.startswith(prefix)]

    def key(s: StreamInfo) -> tuple[Any, ...]:
        return (s.last_event or 0, s.name) if by_time else (s.name,)

    page, next_token = _page(infos, key, token, limit, descending)
    arn = group_arn(region, account, group)
    streams = []
    for s in page:
        item: dict[str, Any] = {"logStreamName": s.name, "creationTime": s.creation_time}
        if s.first_event is not None:
            item["firstEventTimestamp"] = s.first_event
        if s.last_event is not None:
            item["lastEventTimestamp"] = s.last_event
        if s.last_ingestion is not None:
            item["lastIngestionTime"] = s.last_ingestion
        item["uploadSequenceToken"] = _upload_sequence_token(s)
        item["arn"] = f"{arn}:log-stream:{s.name}"
        item["storedBytes"] = 0  # deprecated by AWS in 2019; always 0 there too
        streams.append(item)
    out: dict[str, Any] = {"logStreams": streams}
    if next_token is not None:
        out["nextToken"] = next_token
    return out


async def describe_log_streams(p: Params, services: Services, account: str) -> dict[str, Any]:
    group = group_name_of(p, account)
    prefix = p.string("logStreamNamePrefix", max_len=512)
    order = p.string("orderBy")
    descending = p.boolean("descending")
    token = p.string("nextToken")
    limit = p.integer("limit", low=1, high=50)
    if order is not None and order not in ("LogStreamName", "LastEventTime"):
        p.problems.append(
            f"Value '{order}' at 'orderBy' failed to satisfy constraint: Member must satisfy "
            "enum value set: [LogStreamName, LastEventTime]"
        )
    p.check()
    by_time = order == "LastEventTime"
    if by_time and prefix is not None:
        raise _invalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
    return await asyncio.to_thread(
        describe_streams,
        services.logs,
        account,
        services.config.region,
        group,
        prefix,
        by_time,
        bool(descending),
        token,
        limit or 50,
    )


def describe_groups(
    store: FileLogStore,
    account: str,
    region: str,
    prefix: str | None,
    pattern: str | None,
    names: list[str] | None,
    token: str | None,
    limit: int,
) -> dict[str, Any]:
    groups = []
    for name, created, size in store.groups(account):
        if prefix is not None and not name.startswith(prefix):
            continue
        if pattern and pattern not in name:
            continue
        if names is not None and name not in names:
            continue
        groups.append((name, created, size))
    page, next_token = _page(groups, lambda g: (g[0],), token, limit)
    out: dict[str, Any] = {
        "logGroups": [
            {
                "logGroupName": name,
                "creationTime": created,
                "metricFilterCount": 0,
                "arn": group_arn(region, account, name) + ":*",
                "storedBytes": size,
                "logGroupClass": "STANDARD",
                "logGroupArn": group_arn(region, account, name),
            }
            for name, created, size in page
        ]
    }
    if next_token is not None:
        out["nextToken"] = next_token
    return out


def _identifier_names(idents: Iterable[str], account: str) -> list[str]:
    names = []
    for ident in idents:
        if ident.startswith("arn:"):
            parts = ident.split(":", 6)
            if len(parts) == 7 and parts[5] == "log-group" and parts[4] == account:
                names.append(parts[6].removesuffix(":*"))
        else:
            names.append(ident)
    return names


async def describe_log_groups(p: Params, services: Services, account: str) -> dict[str, Any]:
    prefix = p.string("logGroupNamePrefix", max_len=512)
    pattern = p.string("logGroupNamePattern", min_len=0, max_len=512)
    token = p.string("nextToken")
    limit = p.integer("limit", low=1, high=50)
    idents = p.strings("logGroupIdentifiers", max_items=50)
    group_class = p.string("logGroupClass")
    p.boolean("includeLinkedAccounts")
    p.check()
    if prefix is not None and pattern is not None:
        raise _invalid("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
    if idents is not None and (prefix is not None or pattern is not None):
        raise _invalid(
            "logGroupIdentifiers cannot be combined with logGroupNamePrefix or logGroupNamePattern."
        )
    if group_class is not None and group_class != "STANDARD":
        return {"logGroups": []}  # every Shoal log group is of the STANDARD class
    names = _identifier_names(idents, account) if idents is not None else None
    return await asyncio.to_thread(
        describe_groups,
        services.logs,
        account,
        services.config.region,
        prefix,
        pattern,
        names,
        token,
        limit or 50,
    )


# ---- dispatch ----------------------------------------------------------------------------------------

Operation = Callable[[Params, Services, str], Awaitable[dict[str, Any]]]

OPERATIONS: dict[str, Operation] = {
    "FilterLogEvents": filter_log_events,
    "GetLogEvents": get_log_events,
    "DescribeLogStreams": describe_log_streams,
    "DescribeLogGroups": describe_log_groups,
}


async def _read_json(request: Request) -> dict[str, Any]:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise LogsError("InvalidParameterException", f"Request body is larger than {MAX_BODY} bytes.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise LogsError("SerializationException", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise LogsError("SerializationException", "The request body must be a JSON object.")
    return data


async def dispatch(
    request: Request, operation: str, services: Services, rid: str, account: str | None = None
) -> Response:
    """``account``: the caller's (from its signature); the embedded single account when auth is off."""
    account = account or services.config.account_id
    try:
        handler = OPERATIONS.get(operation)
        if handler is None:
            raise LogsError(
                "UnknownOperationException",
                f"Shoal does not support the CloudWatch Logs operation {operation}; it serves "
                f"{', '.join(OPERATIONS)}.",
            )
        if request.method != "POST":
            raise LogsError("SerializationException", "CloudWatch Logs requests must be POST /.")
        result = await handler(Params(await _read_json(request)), services, account)
        return _response(result, rid)
    except LogsError as exc:
        return _error(exc, rid)
    except Exception as exc:  # the client gets an AWS-shaped 500, the server log gets the details
        log.error("internal error in CloudWatch Logs %s", operation, exc_info=exc)
        return _error(
            LogsError(
                "ServiceUnavailableException",
                "Shoal hit an internal error; the server log has the details.",
                500,
            ),
            rid,
        )

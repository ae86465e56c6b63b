"""The CloudWatch Logs API at the wire (spec §5.4): boto3's ``logs`` client, raw JSON 1.1 and the AWS CLI."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from _server import (
    ACCOUNT,
    REGION,
    ROLE,
    LineReader,
    ShoalServer,
    client_env,
    make_zip,
    runtime,
    serve,
    wait_for,
)
from botocore.exceptions import ClientError

STREAM_RE = re.compile(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")
EVENT_KEYS = {"logStreamName", "timestamp", "message", "ingestionTime", "eventId"}
NO_GROUP = "The specified log group does not exist."

HANDLER = """
import os

def handler(event, context):
    for line in event.get("lines", []):
        print(line)
    return {"stream": context.log_stream_name, "group": context.log_group_name,
            "request": context.aws_request_id, "generation": os.environ.get("GENERATION", "1")}
"""

LINES = [
    ["alpha one", "beta two"],
    ["gamma three ERROR", "the quick brown fox"],
    ["delta four WARN", 'say "hi" there'],
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalServer]:
    yield from serve(tmp_path_factory, "logs-api")


@dataclass
class Deployed:
    name: str
    group: str
    other_group: str
    requests: list[str] = field(default_factory=list)
    streams: list[str] = field(default_factory=list)  # first generation's stream, then the second's
    stream_of: dict[str, str] = field(default_factory=dict)  # request id -> stream


def _invoke(lam: Any, name: str, event: dict[str, Any]) -> dict[str, Any]:
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    assert "FunctionError" not in resp, resp["Payload"].read()
    result: dict[str, Any] = json.loads(resp["Payload"].read())
    return result


def _all_events(logs: Any, **kwargs: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
        events.extend(page["events"])
    return events


def _wait_reports(logs: Any, group: str, request_ids: list[str]) -> list[dict[str, Any]]:
    """Logs reach disk every 0.2 s: poll until the REPORT line of every request is there."""

    def probe() -> list[dict[str, Any]] | None:
        try:
            events = _all_events(logs, logGroupName=group)
        except ClientError:
            return None
        text = "\n".join(e["message"] for e in events)
        return events if all(f"REPORT RequestId: {r}" in text for r in request_ids) else None

    return wait_for(probe, timeout=20, what=f"REPORT lines of {request_ids} in {group}")


@pytest.fixture(scope="module")
def deployed(server: ShoalServer) -> Deployed:
    lam = server.client("lambda")
    logs = server.client("logs")
    d = Deployed("logs-a", "/aws/lambda/logs-a", "/aws/lambda/logs-b")
    for name in ("logs-a", "logs-b"):
        lam.create_function(
            FunctionName=name,
            Runtime=runtime(),
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": make_zip({"app.py": HANDLER})},
        )
        lam.get_waiter("function_active_v2").wait(
            FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
    for lines in LINES:
        out = _invoke(lam, d.name, {"lines": lines})
        assert out["group"] == d.group
        d.requests.append(out["request"])
        d.stream_of[out["request"]] = out["stream"]
    _invoke(lam, "logs-b", {"lines": ["from b"]})
    # a configuration change retires the warm environment: the next invoke writes to a second stream
    lam.update_function_configuration(FunctionName=d.name, Environment={"Variables": {"GENERATION": "2"}})
    lam.get_waiter("function_updated_v2").wait(
        FunctionName=d.name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    out = _invoke(lam, d.name, {"lines": ["epsilon five"]})
    assert out["generation"] == "2"
    d.requests.append(out["request"])
    d.stream_of[out["request"]] = out["stream"]
    d.streams = list(dict.fromkeys(d.stream_of[r] for r in d.requests))
    assert len(d.streams) == 2, d.stream_of
    _wait_reports(logs, d.group, d.requests)
    _wait_reports(logs, d.other_group, [])
    return d


def _raw(server: ShoalServer, operation: str, body: Any) -> tuple[int, dict[str, str], Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        server.endpoint + "/",
        data=data,
        method="POST",
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"Logs_20140328.{operation}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err.get("Message", "")


# ---- FilterLogEvents ----


def test_filter_finds_platform_and_printed_lines_with_their_streams(
    server: ShoalServer, deployed: Deployed
) -> None:
    logs = server.client("logs")
    events = _all_events(logs, logGroupName=deployed.group, interleaved=True)
    for event in events:
        assert set(event) == EVENT_KEYS, event
        assert STREAM_RE.match(event["logStreamName"]), event["logStreamName"]
        assert event["ingestionTime"] >= event["timestamp"] > 1_600_000_000_000
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    assert len({e["eventId"] for e in events}) == len(events)
    for request, lines in zip(deployed.requests, [*LINES, ["epsilon five"]], strict=True):
        stream = deployed.stream_of[request]
        mine = [e for e in events if request in e["message"]]
        kinds = [e["message"].split(" ", 1)[0] for e in mine]
        assert kinds == ["START", "END", "REPORT"], kinds
        assert mine[0]["message"] == f"START RequestId: {request} Version: $LATEST"
        assert all(e["logStreamName"] == stream for e in mine)
        for line in lines:
            found = [e for e in events if e["message"].rstrip("\n") == line]
            assert len(found) == 1, (line, found)
            assert found[0]["logStreamName"] == stream
            assert mine[0]["timestamp"] <= found[0]["timestamp"] <= mine[-1]["timestamp"]
    init = [e for e in events if e["message"].startswith("INIT_START")]
    assert {e["logStreamName"] for e in init} == set(deployed.streams)


def _messages(logs: Any, group: str, pattern: str, **kw: Any) -> list[str]:
    return [
        e["message"].rstrip("\n") for e in _all_events(logs, logGroupName=group, filterPattern=pattern, **kw)
    ]


def test_filter_pattern(server: ShoalServer, deployed: Deployed) -> None:
    logs = server.client("logs")
    g = deployed.group
    assert _messages(logs, g, "quick fox") == ["the quick brown fox"]
    assert _messages(logs, g, "fox quick") == ["the quick brown fox"]
    assert _messages(logs, g, '"quick brown"') == ["the quick brown fox"]
    assert _messages(logs, g, '"brown quick"') == []
    assert _messages(logs, g, '"\\"hi\\""') == ['say "hi" there']
    assert sorted(_messages(logs, g, "?ERROR ?WARN")) == ["delta four WARN", "gamma three ERROR"]
    assert _messages(logs, g, "?ERROR ?nothing-like-this") == ["gamma three ERROR"]
    assert _messages(logs, g, "three -ERROR") == []
    assert _messages(logs, g, "error") == []  # case-sensitive, like AWS
    reports = _messages(logs, g, "REPORT")
    assert len(reports) == 4 and all(m.startswith("REPORT RequestId: ") for m in reports)
    assert len(_messages(logs, g, "")) == len(_all_events(logs, logGroupName=g))
    assert _messages(logs, g, "%^alpha o.e$%") == ["alpha one"]
    with pytest.raises(ClientError) as exc:
        logs.filter_log_events(logGroupName=g, filterPattern='{ $.level = "ERROR" }')
    assert _code(exc)[0] == "InvalidParameterException"


def test_filter_pagination_and_paginator(server: ShoalServer, deployed: Deployed) -> None:
    logs = server.client("logs")
    everything = logs.filter_log_events(logGroupName=deployed.group)
    assert "nextToken" not in everything
    pages, token, seen = 0, None, []
    while True:
        kw: dict[str, Any] = {"logGroupName": deployed.group, "limit": 3}
        if token:
            kw["nextToken"] = token
        page = logs.filter_log_events(**kw)
        pages += 1
        assert len(page["events"]) <= 3
        seen.extend(page["events"])
        token = page.get("nextToken")
        if not token:
            break
        assert pages < 100
    assert [e["eventId"] for e in seen] == [e["eventId"] for e in everything["events"]]
    assert pages == -(-len(seen) // 3)
    via_paginator = _all_events(logs, logGroupName=deployed.group, PaginationConfig={"PageSize": 2})
    assert [e["eventId"] for e in via_paginator] == [e["eventId"] for e in everything["events"]]
    # event ids are stable from one query to the next (``aws logs tail --follow`` de-duplicates by them)
    again = logs.filter_log_events(logGroupName=deployed.group)
    assert [e["eventId"] for e in again["events"]] == [e["eventId"] for e in everything["events"]]


def test_filter_time_range_and_streams(server: ShoalServer, deployed: Deployed) -> None:
    logs = server.client("logs")
    events = _all_events(logs, logGroupName=deployed.group)
    first, last = events[0]["timestamp"], events[-1]["timestamp"]
    assert _all_events(logs, logGroupName=deployed.group, startTime=last + 1) == []
    assert _all_events(logs, logGroupName=deployed.group, endTime=max(first - 1, 0)) == []
    # both bounds are inclusive
    assert len(_all_events(logs, logGroupName=deployed.group, startTime=first, endTime=last)) == len(events)
    at_last = _all_events(logs, logGroupName=deployed.group, startTime=last)
    assert at_last and all(e["timestamp"] == last for e in at_last)

    second = deployed.streams[1]
    only = logs.filter_log_events(logGroupName=deployed.group, logStreamNames=[second])
    assert only["events"] and {e["logStreamName"] for e in only["events"]} == {second}
    assert only["searchedLogStreams"] == [{"logStreamName": second, "searchedCompletely": True}]
    assert any(e["message"].rstrip() == "epsilon five" for e in only["events"])
    by_prefix = _all_events(logs, logGroupName=deployed.group, logStreamNamePrefix=second[:-20])
    assert {e["logStreamName"] for e in by_prefix} == {second}
    assert _all_events(logs, logGroupName=deployed.group, logStreamNamePrefix="2001/") == []
    with pytest.raises(ClientError) as exc:
        logs.filter_log_events(logGroupName=deployed.group, logStreamNames=[second], logStreamNamePrefix="20")
    assert _code(exc)[0] == "InvalidParameterException"


def test_log_group_identifier_name_or_arn(server: ShoalServer, deployed: Deployed) -> None:
    logs = server.client("logs")
    by_name = _all_events(logs, logGroupName=deployed.group)
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{deployed.group}"
    for ident in (deployed.group, arn, arn + ":*"):
        got = _all_events(logs, logGroupIdentifier=ident)
        assert [e["eventId"] for e in got] == [e["eventId"] for e in by_name], ident
    with pytest.raises(ClientError) as exc:
        logs.filter_log_events(logGroupName=deployed.group, logGroupIdentifier=arn)
    assert _code(exc)[0] == "InvalidParameterException"


def test_follow_protocol_of_aws_logs_tail(server: ShoalServer, deployed: Deployed) -> None:
    """What ``aws logs tail --follow`` does (spec §5.4): re-query from the newest timestamp seen and drop the
    event ids already shown; new invocations then show up exactly once."""
    logs = server.client("logs")
    lam = server.client("lambda")
    shown: dict[str, dict[str, Any]] = {}
    kwargs: dict[str, Any] = {
        "logGroupName": deployed.other_group,
        "interleaved": True,
        "startTime": int(time.time() * 1000) - 600_000,
    }

    def poll() -> None:
        while True:
            resp = logs.filter_log_events(**kwargs)
            for event in resp["events"]:
                assert event["eventId"] not in shown or shown[event["eventId"]] == event
                shown.setdefault(event["eventId"], event)
            if "nextToken" not in resp:
                break
            kwargs["nextToken"] = resp["nextToken"]
        kwargs.pop("nextToken", None)
        if shown:
            kwargs["startTime"] = max(e["timestamp"] for e in shown.values())

    poll()
    assert any(e["message"].rstrip() == "from b" for e in shown.values())
    request = _invoke(lam, "logs-b", {"lines": ["zeta six"]})["request"]

    def arrived() -> bool:
        poll()
        return any(f"REPORT RequestId: {request}" in e["message"] for e in shown.values())

    wait_for(arrived, timeout=20, what="the new invocation's REPORT line")
    new = [
        e["message"].rstrip() for e in shown.values() if request in e["message"] or "zeta six" in e["message"]
    ]
    assert len([m for m in new if m.startswith("START")]) == 1
    assert "zeta six" in new


# ---- GetLogEvents ----


def test_get_log_events_tokens_terminate(server: ShoalServer, deployed: Deployed) -> None:
    logs = server.client("logs")
    stream = deployed.streams[0]
    expected = [e["message"] for e in _all_events(logs, logGroupName=deployed.group, logStreamNames=[stream])]
    assert len(expected) >= 10

    page = logs.get_log_events(logGroupName=deployed.group, logStreamName=stream, startFromHead=True, limit=4)
    assert set(page) >= {"events", "nextForwardToken", "nextBackwardToken"}
    assert page["nextForwardToken"].startswith("f/") and page["nextBackwardToken"].startswith("b/")
    assert all(set(e) == {"timestamp", "message", "ingestionTime"} for e in page["events"])
    forward = [e["message"] for e in page["events"]]
    token, calls = page["nextForwardToken"], 0
    while True:
        page = logs.get_log_events(
            logGroupName=deployed.group, logStreamName=stream, nextToken=token, limit=4
        )
        forward.extend(e["message"] for e in page["events"])
        calls += 1
        assert calls < 50, "GetLogEvents forward tokens never ended"
        if page["nextForwardToken"] == token:  # end of stream: the same token comes back
            assert page["events"] == []
            break
        token = page["nextForwardToken"]
    assert forward == expected

    page = logs.get_log_events(
        logGroupName=deployed.group, logStreamName=stream, limit=3
    )  # newest first page
    backward = [e["message"] for e in page["events"]]
    assert backward == expected[-3:]
    token, calls = page["nextBackwardToken"], 0
    while True:
        page = logs.get_log_events(
            logGroupName=deployed.group, logStreamName=stream, nextToken=token, limit=3
        )
        backward[:0] = [e["message"] for e in page["events"]]
        calls += 1
        assert calls < 50, "GetLogEvents backward tokens never ended"
        if page["nextBackwardToken"] == token:
            break
        token = page["nextBackwardToken"]
    assert backward == expected

    everything = logs.get_log_events(logGroupIdentifier=deployed.group, logStreamName=stream)
    assert [e["message"] for e in everything["events"]] == expected


def test_get_log_events_time_range_and_errors(server: ShoalServer, deployed: Deployed) -> None:
    logs = server.client("logs")
    stream = deployed.streams[0]
    events = logs.get_log_events(logGroupName=deployed.group, logStreamName=stream, startFromHead=True)[
        "events"
    ]
    last = events[-1]["timestamp"]
    tail = logs.get_log_events(logGroupName=deployed.group, logStreamName=stream, startTime=last)["events"]
    assert tail and all(e["timestamp"] == last for e in tail)
    assert logs.get_log_events(logGroupName=deployed.group, logStreamName=stream, endTime=last)["events"] == [
        e for e in events if e["timestamp"] < last
    ]  # endTime is exclusive here
    with pytest.raises(ClientError) as exc:
        logs.get_log_events(logGroupName=deployed.group, logStreamName="2020/01/01/[$LATEST]" + "0" * 32)
    assert _code(exc) == ("ResourceNotFoundException", "The specified log stream does not exist.")
    with pytest.raises(ClientError) as exc:
        logs.get_log_events(logGroupName="/aws/lambda/nope", logStreamName=stream)
    assert _code(exc) == ("ResourceNotFoundException", NO_GROUP)
    with pytest.raises(ClientError) as exc:
        logs.get_log_events(logGroupName=deployed.group, logStreamName=stream, nextToken="garbage")
    assert _code(exc)[0] == "InvalidParameterException"


# ---- DescribeLogStreams / DescribeLogGroups ----


def test_describe_log_streams(server: ShoalServer, deployed: Deployed) -> None:
    logs = server.client("logs")
    streams = logs.describe_log_streams(logGroupName=deployed.group)["logStreams"]
    assert [s["logStreamName"] for s in streams] == sorted(deployed.streams)
    for s in streams:
        assert set(s) == {
            "logStreamName",
            "creationTime",
            "firstEventTimestamp",
            "lastEventTimestamp",
            "lastIngestionTime",
            "uploadSequenceToken",
            "arn",
            "storedBytes",
        }
        assert s["arn"] == (
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{deployed.group}:log-stream:{s['logStreamName']}"
        )
        assert s["storedBytes"] == 0  # deprecated field, 0 on AWS too
        assert (
            s["creationTime"] <= s["firstEventTimestamp"] <= s["lastEventTimestamp"] <= s["lastIngestionTime"]
        )
    newest_first = logs.describe_log_streams(
        logGroupName=deployed.group, orderBy="LastEventTime", descending=True
    )["logStreams"]
    assert [s["logStreamName"] for s in newest_first] == [deployed.streams[1], deployed.streams[0]]
    page = logs.describe_log_streams(logGroupName=deployed.group, limit=1)
    assert len(page["logStreams"]) == 1 and page["nextToken"]
    rest = logs.describe_log_streams(logGroupName=deployed.group, limit=1, nextToken=page["nextToken"])
    assert [page["logStreams"][0]["logStreamName"], rest["logStreams"][0]["logStreamName"]] == sorted(
        deployed.streams
    )
    assert "nextToken" not in rest
    paginated = [
        s["logStreamName"]
        for p in logs.get_paginator("describe_log_streams").paginate(
            logGroupName=deployed.group, PaginationConfig={"PageSize": 1}
        )
        for s in p["logStreams"]
    ]
    assert paginated == sorted(deployed.streams)
    prefixed = logs.describe_log_streams(
        logGroupName=deployed.group, logStreamNamePrefix=deployed.streams[1][:-8]
    )
    assert [s["logStreamName"] for s in prefixed["logStreams"]] == [deployed.streams[1]]
    with pytest.raises(ClientError) as exc:
        logs.describe_log_streams(
            logGroupName=deployed.group, orderBy="LastEventTime", logStreamNamePrefix="2"
        )
    assert _code(exc)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        logs.describe_log_streams(logGroupName="/aws/lambda/nope")
    assert _code(exc) == ("ResourceNotFoundException", NO_GROUP)


def test_describe_log_groups(server: ShoalServer, deployed: Deployed) -> None:
    logs = server.client("logs")
    groups = logs.describe_log_groups()["logGroups"]
    names = [g["logGroupName"] for g in groups]
    assert names == sorted(names) and {deployed.group, deployed.other_group} <= set(names)
    g = next(g for g in groups if g["logGroupName"] == deployed.group)
    assert g["arn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{deployed.group}:*"
    assert g["logGroupArn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{deployed.group}"
    assert g["storedBytes"] > 0 and g["creationTime"] > 1_600_000_000_000
    assert g["metricFilterCount"] == 0 and g["logGroupClass"] == "STANDARD"
    assert "retentionInDays" not in g  # never expire
    page = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/logs-", limit=1)
    assert [x["logGroupName"] for x in page["logGroups"]] == [deployed.group] and page["nextToken"]
    rest = logs.describe_log_groups(
        logGroupNamePrefix="/aws/lambda/logs-", limit=1, nextToken=page["nextToken"]
    )
    assert [x["logGroupName"] for x in rest["logGroups"]] == [deployed.other_group]
    assert "nextToken" not in rest
    assert logs.describe_log_groups(logGroupNamePrefix="/nothing/")["logGroups"] == []
    assert [
        x["logGroupName"] for x in logs.describe_log_groups(logGroupNamePattern="logs-b")["logGroups"]
    ] == [deployed.other_group]


# ---- errors at the wire ----


def test_unknown_group_is_resource_not_found(server: ShoalServer, deployed: Deployed) -> None:
    logs = server.client("logs")
    with pytest.raises(ClientError) as exc:
        logs.filter_log_events(logGroupName="/aws/lambda/does-not-exist")
    assert _code(exc) == ("ResourceNotFoundException", NO_GROUP)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    status, headers, body = _raw(server, "FilterLogEvents", {"logGroupName": "/aws/lambda/does-not-exist"})
    headers = {k.lower(): v for k, v in headers.items()}
    assert status == 400
    assert body == {"__type": "ResourceNotFoundException", "message": NO_GROUP}
    assert headers["x-amzn-errortype"] == "ResourceNotFoundException"
    assert headers["content-type"].startswith("application/x-amz-json-1.1")
    assert headers["x-amzn-requestid"]


def test_raw_protocol_errors(server: ShoalServer, deployed: Deployed) -> None:
    status, headers, body = _raw(server, "FilterLogEvents", {"logGroupName": deployed.group})
    assert status == 200 and body["events"]
    assert {k.lower() for k in headers} >= {"x-amzn-requestid", "content-type"}

    status, _, body = _raw(server, "FilterLogEvents", {"logGroupName": deployed.group, "limit": 0})
    assert (status, body["__type"]) == (400, "InvalidParameterException")
    assert "at 'limit'" in body["message"]
    status, _, body = _raw(server, "DescribeLogStreams", {"logGroupName": deployed.group, "limit": 51})
    assert (status, body["__type"]) == (400, "InvalidParameterException")
    status, _, body = _raw(server, "FilterLogEvents", {})
    assert (status, body["__type"]) == (400, "InvalidParameterException")
    status, _, body = _raw(server, "GetLogEvents", {"logGroupName": deployed.group})
    assert (status, body["__type"]) == (400, "InvalidParameterException")
    assert "logStreamName" in body["message"]
    status, _, body = _raw(server, "FilterLogEvents", b"{not json")
    assert (status, body["__type"]) == (400, "SerializationException")

    for op in ("PutLogEvents", "CreateLogGroup", "StartLiveTail"):
        status, _, body = _raw(server, op, {"logGroupName": "x"})
        assert (status, body["__type"]) == (400, "UnknownOperationException")
        assert op in body["message"]


# ---- the AWS CLI ----


def _aws(server: ShoalServer, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "awscli", *args, "--endpoint-url", server.endpoint],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=client_env(),
        check=False,
    )


def _has_logs_tail() -> bool:
    """``aws logs tail`` is an AWS CLI v2 command; the v1 ``awscli`` package from PyPI does not have it."""
    try:
        return importlib.util.find_spec("awscli.customizations.logs.tail") is not None
    except ModuleNotFoundError:
        return False


def test_aws_cli_reads_the_logs(server: ShoalServer, deployed: Deployed) -> None:
    out = _aws(
        server,
        "logs",
        "filter-log-events",
        "--log-group-name",
        deployed.group,
        "--filter-pattern",
        "?alpha ?epsilon",
        "--output",
        "json",
    )
    assert out.returncode == 0, out.stderr
    messages = [e["message"].rstrip() for e in json.loads(out.stdout)["events"]]
    assert messages == ["alpha one", "epsilon five"]

    out = _aws(
        server,
        "logs",
        "filter-log-events",
        "--log-group-name",
        deployed.group,
        "--page-size",
        "2",
        "--output",
        "json",
    )
    assert out.returncode == 0, out.stderr
    text = "\n".join(e["message"] for e in json.loads(out.stdout)["events"])
    assert all(f"REPORT RequestId: {r}" in text for r in deployed.requests)

    out = _aws(server, "logs", "describe-log-streams", "--log-group-name", deployed.group, "--output", "json")
    assert out.returncode == 0, out.stderr
    assert sorted(s["logStreamName"] for s in json.loads(out.stdout)["logStreams"]) == sorted(
        deployed.streams
    )

    out = _aws(
        server,
        "logs",
        "get-log-events",
        "--log-group-name",
        deployed.group,
        "--log-stream-name",
        deployed.streams[1],
        "--start-from-head",
        "--output",
        "json",
    )
    assert out.returncode == 0, out.stderr
    assert "epsilon five" in [e["message"].rstrip() for e in json.loads(out.stdout)["events"]]

    out = _aws(server, "logs", "filter-log-events", "--log-group-name", "/aws/lambda/does-not-exist")
    assert out.returncode != 0
    assert "ResourceNotFoundException" in out.stderr and NO_GROUP in out.stderr


@pytest.mark.skipif(
    not _has_logs_tail(), reason="the installed AWS CLI (v1) has no `aws logs tail` (a v2 command)"
)
def test_aws_logs_tail(server: ShoalServer, deployed: Deployed) -> None:
    out = _aws(server, "logs", "tail", deployed.group, "--since", "1h", "--format", "short")
    assert out.returncode == 0, out.stderr
    for line in ("alpha one", "the quick brown fox", "epsilon five"):
        assert line in out.stdout
    assert all(f"START RequestId: {r}" in out.stdout for r in deployed.requests)

    follow = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "awscli",
            "logs",
            "tail",
            deployed.other_group,
            "--follow",
            "--since",
            "1h",
            "--endpoint-url",
            server.endpoint,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=client_env(),
    )
    try:
        reader = LineReader(follow.stdout)
        reader.wait_for(lambda line: "from b" in line)
        request = _invoke(server.client("lambda"), "logs-b", {"lines": ["tail follow marker"]})["request"]
        reader.wait_for(lambda line: f"REPORT RequestId: {request}" in line, timeout=30)
        assert any("tail follow marker" in ln for ln in reader.lines), reader.lines
        assert sum(f"START RequestId: {request}" in ln for ln in reader.lines) == 1
    finally:
        follow.terminate()
        follow.wait(10)

"""SnapStart through boto3: configuration, validation, and new environments of a published version forked from
its snapshot (INIT once, hooks, each copy its own uid, /tmp and randomness, RESTORE_* log lines)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shoal.sandbox import namespace
from tests.e2e._server import ShoalServer, make_zip, wait_for
from tests.e2e.conftest import ROLE, RUNTIME, error_of, unique_name

SOURCE = {
    "app.py": """
import os, random, time
from snapshot_restore_py import register_before_snapshot, register_after_restore

INIT_PID = os.getpid()
HOOKS = []


@register_before_snapshot
def before():
    HOOKS.append("before")


@register_after_restore
def after():
    HOOKS.append("after")


def handler(event, context):
    time.sleep(event.get("sleep", 0))
    open("/tmp/mine", "a").write("x")
    return {
        "init_pid": INIT_PID,
        "uid": os.getuid(),
        "hooks": HOOKS,
        "random": random.random(),
        "tmp": open("/tmp/mine").read(),
        "type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"],
        "stream": os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME"),
    }
"""
}
needs_312 = pytest.mark.skipif(
    RUNTIME != "python3.12", reason="SnapStart needs python3.12 or later; this host has only python3.11"
)


@needs_312
def test_snap_start_configuration_and_validation(lambda_client: Any, make_function: Any) -> None:
    name = unique_name("snapcfg")
    made = make_function(name, SOURCE, SnapStart={"ApplyOn": "PublishedVersions"}, runtime="python3.12")
    assert made["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "Off"}
    version = lambda_client.publish_version(FunctionName=name)["Version"]
    got = lambda_client.get_function_configuration(FunctionName=name, Qualifier=version)
    assert got["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    latest = lambda_client.get_function_configuration(FunctionName=name)
    assert latest["SnapStart"]["OptimizationStatus"] == "Off"

    with pytest.raises(ClientError) as info:
        lambda_client.update_function_configuration(FunctionName=name, Runtime="python3.11")
    assert error_of(info.value) == (
        400,
        "InvalidParameterValueException",
        "python3.11 is not supported for SnapStart enabled functions.",
    )
    with pytest.raises(ClientError) as info:
        lambda_client.update_function_configuration(FunctionName=name, SnapStart={"ApplyOn": "Always"})
    status, code, message = error_of(info.value)
    assert (status, code) == (400, "ValidationException")
    assert "snapStart.applyOn" in message and "[PublishedVersions, None]" in message
    assert lambda_client.get_function_configuration(FunctionName=name)["SnapStart"]["ApplyOn"] == (
        "PublishedVersions"
    )  # nothing changed


def test_snap_start_is_refused_for_other_runtimes(lambda_client: Any, make_function: Any) -> None:
    with pytest.raises(ClientError) as info:
        make_function(
            unique_name("snapbad"), SOURCE, SnapStart={"ApplyOn": "PublishedVersions"}, runtime="python3.11"
        )
    assert error_of(info.value) == (
        400,
        "InvalidParameterValueException",
        "python3.11 is not supported for SnapStart enabled functions.",
    )


@needs_312
@pytest.mark.skipif(
    not (namespace.available()[0] and namespace.forks_isolatable()),
    reason="needs the namespace sandbox with unprivileged user namespaces (else SnapStart versions run INIT)",
)
def test_new_environments_are_forked_from_the_snapshot(
    lambda_client: Any, make_function: Any, logs_client: Any
) -> None:
    name = unique_name("snap")
    make_function(name, SOURCE, SnapStart={"ApplyOn": "PublishedVersions"})
    version = lambda_client.publish_version(FunctionName=name)["Version"]
    group = f"/aws/lambda/{name}"
    deadline = time.monotonic() + 20  # the snapshot is made when the version is published, before any invoke
    made: list[str] = []
    while time.monotonic() < deadline and not made:
        try:
            events = logs_client.filter_log_events(logGroupName=group)["events"]
        except ClientError:  # no log group before the snapshot's first lines are stored
            events = []
        made = [e["message"] for e in events if e["message"].startswith("INIT_REPORT")]
        time.sleep(0.1)
    assert made and "Phase: init" in made[0]
    results: list[dict[str, Any]] = []

    def call() -> None:
        resp = lambda_client.invoke(FunctionName=name, Qualifier=version, Payload=json.dumps({"sleep": 0.5}))
        results.append(json.loads(resp["Payload"].read()))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 3, results
    assert len({r["init_pid"] for r in results}) == 1  # INIT ran once, in the snapshot
    assert len({r["uid"] for r in results}) == 3  # three environments, each its own uid
    assert len({r["random"] for r in results}) == 3
    for r in results:
        assert r["hooks"] == ["before", "after"]
        assert r["tmp"] == "x"  # its own /tmp
        assert r["type"] == "snap-start" and r["stream"] is None

    deadline = time.monotonic() + 20
    messages: list[str] = []
    while time.monotonic() < deadline:
        events = logs_client.filter_log_events(logGroupName=group)["events"]
        messages = [e["message"] for e in events]
        if sum(m.startswith("REPORT") for m in messages) >= 3:
            break
        time.sleep(0.2)
    assert sum(m.startswith("RESTORE_START Runtime Version: python:3.12") for m in messages) == 3
    assert sum(m.startswith("RESTORE_REPORT Restore Duration: ") for m in messages) == 3
    reports = [m for m in messages if m.startswith("REPORT")]
    assert len(reports) == 3
    assert all("\tRestore Duration: " in m and "\tBilled Restore Duration: " in m for m in reports)
    assert not any("\tInit Duration: " in m for m in reports)


def _init_reports(logs: Any, group: str) -> int:
    try:
        events = logs.filter_log_events(logGroupName=group)["events"]
    except ClientError:  # no log group before the first lines are stored
        return 0
    return sum(e["message"].startswith("INIT_REPORT") for e in events)


@needs_312
@pytest.mark.skipif(
    not (namespace.available()[0] and namespace.forks_isolatable()),
    reason="needs the namespace sandbox with unprivileged user namespaces (else SnapStart versions run INIT)",
)
def test_snapshots_are_made_again_after_a_restart(tmp_path: Any) -> None:
    server = ShoalServer(tmp_path).start()
    try:
        lam, logs = server.client("lambda"), server.client("logs")
        lam.create_function(
            FunctionName="snappy",
            Runtime="python3.12",
            Handler="app.handler",
            Role=ROLE,
            Code={"ZipFile": make_zip(SOURCE)},
            SnapStart={"ApplyOn": "PublishedVersions"},
        )
        lam.get_waiter("function_active_v2").wait(FunctionName="snappy", WaiterConfig={"Delay": 1})
        version = lam.publish_version(FunctionName="snappy")["Version"]
        wait_for(lambda: _init_reports(logs, "/aws/lambda/snappy") == 1, what="the snapshot made at publish")
    finally:
        server.stop_and_check()
    restarted = ShoalServer(tmp_path).start()  # same data directory
    try:
        logs = restarted.client("logs")
        wait_for(
            lambda: _init_reports(logs, "/aws/lambda/snappy") == 2, what="the snapshot made again at start"
        )
        out = json.loads(
            restarted.client("lambda").invoke(FunctionName="snappy", Qualifier=version)["Payload"].read()
        )
        assert out["type"] == "snap-start" and out["hooks"] == ["before", "after"]
        assert _init_reports(logs, "/aws/lambda/snappy") == 2  # the invoke restored, it ran no INIT
    finally:
        restarted.stop_and_check()

"""Every blueprint deployed to ``shoal server`` and invoked with its own ``event.json``.

Some go the way a user goes: ``shoal init --blueprint NAME DIR``, then the very ``shoal deploy …`` and
``shoal invoke NAME @event.json`` lines it printed; the others are written with the blueprint writer and
created and invoked through boto3. The outputs are checked for what each blueprint promises: the SQS handler
reports exactly the failing message ids of its sample batch, the HTTP handler answers each route with its
status, the S3 handler decodes keys, the scheduled job computes its cut-off from the event's time.

A blueprint whose runtime this host (or the server) lacks is skipped with what to install.
"""

from __future__ import annotations

import base64
import copy
import importlib
import json
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from shoal import blueprints as bp
from shoal.cli.commands import zip_directory
from tests.e2e._server import client_env
from tests.e2e.conftest import REGION, ROLE, unique_name, wait_active

# `shoal` with the blueprint commands: the real entry point, plus `init`/`blueprints` registered here when
# shoal.cli.main does not register them (yet) itself.
CLI = """
import argparse, sys
from shoal.cli import main as m
build = m.build_parser
def build_parser():
    parser = build()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "init" not in sub.choices:
        from shoal.cli.blueprints import register
        register(sub)
    return parser
m.build_parser = build_parser
sys.exit(m.main(sys.argv[1:]))
"""
UNAVAILABLE = "is not available on this Shoal host"
SQS_FAILING = ["2e1424d4-f796-459a-8184-9c92662be6da", "6f7c1e12-45b1-4d89-9c1a-3b9f2d0e8a55"]
THROUGH_CLI = {"python-hello", "python-http-api", "python-sqs", "java-hello", "shell-hello"}
THROUGH_BOTO3 = {
    "nodejs-hello",
    "nodejs-esm-hello",
    "ruby-hello",
    "python-s3",
    "python-scheduled",
    "dotnet-hello",
}


def shoal(endpoint: str, *args: str, stdin: str | None = None, cwd: Path | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env=client_env(SHOAL_ENDPOINT=endpoint),
        cwd=cwd,
        check=False,
    )


def skip_unavailable(blueprint: bp.Blueprint, message: str) -> None:
    if UNAVAILABLE in message:
        pytest.skip(f"{blueprint.runtime} is not available on this host: install {blueprint.install}")


class Initialised:
    """A blueprint written by ``shoal init`` and the commands it printed to run next."""

    def __init__(self, endpoint: str, blueprint: bp.Blueprint, target: Path, function: str, out: str) -> None:
        self.endpoint = endpoint
        self.blueprint = blueprint
        self.target = target
        self.function = function
        self.steps = [shlex.split(line) for line in out.split("Next:\n", 1)[1].splitlines()]

    def deploy(self) -> None:
        argv = self.steps[-2]
        assert argv[:2] == ["shoal", "deploy"], self.steps
        done = shoal(self.endpoint, *argv[1:])
        if done.returncode != 0:
            skip_unavailable(self.blueprint, done.stderr)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("created arn:aws:lambda:"), done.stdout
        assert f"runtime {self.blueprint.runtime}, handler {self.blueprint.handler}" in done.stdout

    def invoke_sample(self) -> Any:
        argv = self.steps[-1]
        assert argv == ["shoal", "invoke", self.function, f"@{self.target / 'event.json'}"]
        return self.invoke(*argv[3:])

    def invoke(self, *args: str, stdin: str | None = None) -> Any:
        done = shoal(self.endpoint, "invoke", self.function, *args, stdin=stdin)
        assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
        return json.loads(done.stdout)


@pytest.fixture
def init(endpoint: str, tmp_path: Path, cleanup_names: set[str]) -> Any:
    def run(name: str) -> Initialised:
        blueprint = bp.get(name)
        function = unique_name(f"bp-{name}")
        target = tmp_path / name
        done = shoal(endpoint, "init", "--blueprint", name, str(target), "--name", function)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"Wrote blueprint {name} ({blueprint.runtime}) into {target}:")
        cleanup_names.add(function)
        return Initialised(endpoint, blueprint, target, function, done.stdout)

    return run


def assert_hello(out: Any, runtime: str | None) -> None:
    assert out["message"] == "Hello, Shoal!", out
    assert uuid.UUID(out["requestId"])
    if runtime is not None:
        assert out["runtime"] == f"AWS_Lambda_{runtime}", out


# ---- through the CLI: shoal init + shoal deploy + shoal invoke NAME @event.json ----------------------------


def test_every_blueprint_is_covered() -> None:
    assert THROUGH_CLI | THROUGH_BOTO3 == set(bp.names())
    assert not THROUGH_CLI & THROUGH_BOTO3


def test_shoal_blueprints_lists_them(endpoint: str) -> None:
    done = shoal(endpoint, "blueprints")
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()[1:]]
    assert names == bp.names()


def test_python_hello(init: Any) -> None:
    fn = init("python-hello")
    assert fn.steps[0] == [
        "shoal", "deploy", str(fn.target), "--name", fn.function,
        "--runtime", "python3.12", "--handler", "lambda_function.lambda_handler",
    ]  # fmt: skip
    fn.deploy()
    assert_hello(fn.invoke_sample(), "python3.12")
    assert fn.invoke('{"name": "again"}')["message"] == "Hello, again!"


def test_http_api_routes(init: Any) -> None:
    fn = init("python-http-api")
    fn.deploy()
    created = fn.invoke_sample()  # POST /items
    assert created["statusCode"] == 201, created
    item = json.loads(created["body"])
    assert item["name"] == "widget" and item["price"] == 5 and uuid.UUID(item["id"])
    assert created["headers"]["Location"] == f"/items/{item['id']}"

    event = json.loads((fn.target / "event.json").read_text())
    hello = copy.deepcopy(event)
    hello["rawPath"] = hello["requestContext"]["http"]["path"] = "/hello/Shoal"
    hello["requestContext"]["http"]["method"] = "GET"
    hello["body"] = None
    out = fn.invoke("@-", stdin=json.dumps(hello))
    assert out["statusCode"] == 200 and json.loads(out["body"]) == {"message": "Hello, Shoal!"}
    assert out["headers"] == {"Content-Type": "application/json"}

    hello["rawPath"] = hello["requestContext"]["http"]["path"] = "/nowhere"
    assert fn.invoke("@-", stdin=json.dumps(hello))["statusCode"] == 404
    hello["rawPath"] = hello["requestContext"]["http"]["path"] = "/items"
    refused = fn.invoke("@-", stdin=json.dumps(hello))  # GET /items: only POST is routed
    assert refused["statusCode"] == 405 and refused["headers"]["Allow"] == "POST"


def test_sqs_partial_batch_failures(init: Any) -> None:
    fn = init("python-sqs")
    fn.deploy()
    out = fn.invoke_sample()
    assert out == {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in SQS_FAILING]}
    event = json.loads((fn.target / "event.json").read_text())
    event["Records"] = [r for r in event["Records"] if r["messageId"] not in SQS_FAILING]
    assert fn.invoke("@-", stdin=json.dumps(event)) == {"batchItemFailures": []}


def test_java_hello(init: Any) -> None:
    fn = init("java-hello")
    if fn.steps[0][0] != "shoal":  # shoal init printed a build step: it found no javac
        pytest.skip(f"no javac to compile the blueprint: install {fn.blueprint.install}")
    assert (fn.target / "build" / "example" / "Hello.class").is_file()
    assert fn.steps[0][2] == str(fn.target / "build")
    fn.deploy()
    assert_hello(fn.invoke_sample(), "java17")


@pytest.mark.skipif(
    shutil.which("curl") is None, reason="the shell bootstrap needs curl: apt-get install -y curl"
)
def test_shell_custom_runtime(init: Any) -> None:
    fn = init("shell-hello")
    fn.deploy()
    assert_hello(fn.invoke_sample(), None)
    assert fn.invoke_sample()["runtime"] == "custom"  # a custom runtime has no AWS_EXECUTION_ENV
    # warm: the same bootstrap process answers again, with the event of this invoke
    assert fn.invoke('{"name": "warm"}')["message"] == "Hello, warm!"
    assert fn.invoke("{}")["message"] == "Hello, world!"


@pytest.mark.skipif(
    shutil.which("curl") is None, reason="the shell bootstrap needs curl: apt-get install -y curl"
)
def test_shell_custom_runtime_errors(lambda_client: Any, cleanup_names: set[str], tmp_path: Path) -> None:
    """The bootstrap's error paths: a Handler naming no script fails INIT, a failing function is an error."""
    blueprint = bp.get("shell-hello")
    bp.write(blueprint, tmp_path)
    with (tmp_path / "function.sh").open("a") as fh:
        fh.write('\nfails() {\n  echo "about to fail" >&2\n  echo "it \\"went\\" wrong" >&2\n  return 3\n}\n')

    def error_of(handler: str) -> dict[str, Any]:
        function = deploy_with_boto3(lambda_client, cleanup_names, blueprint, tmp_path, handler=handler)
        resp = lambda_client.invoke(FunctionName=function, Payload=b"{}")
        assert resp["FunctionError"] == "Unhandled"
        return dict(json.loads(resp["Payload"].read()))

    assert error_of("missing.handler") == {
        "errorMessage": "Cannot find missing.sh for handler missing.handler",
        "errorType": "Runtime.ImportModuleError",
        "stackTrace": [],
    }
    assert error_of("function.nope")["errorType"] == "Runtime.HandlerNotFound"
    assert error_of("function.fails") == {
        "errorMessage": 'it "went" wrong',
        "errorType": "HandlerError",
        "stackTrace": [],
    }


# ---- through boto3 -----------------------------------------------------------------------------------------


def deploy_with_boto3(
    lambda_client: Any,
    cleanup_names: set[str],
    blueprint: bp.Blueprint,
    target: Path,
    handler: str | None = None,
    **kw: Any,
) -> str:
    name = unique_name(f"bp-{blueprint.name}")
    config: dict[str, Any] = {}
    if blueprint.memory:
        config["MemorySize"] = blueprint.memory
    if blueprint.timeout:
        config["Timeout"] = blueprint.timeout
    try:
        lambda_client.create_function(
            FunctionName=name,
            Runtime=blueprint.runtime,
            Handler=handler or blueprint.handler,
            Role=ROLE,
            Code={"ZipFile": zip_directory(bp.package_path(blueprint, target))},
            **config,
            **kw,
        )
    except ClientError as exc:
        skip_unavailable(blueprint, str(exc))
        raise
    cleanup_names.add(name)
    wait_active(lambda_client, name)
    return name


def invoke_sample(lambda_client: Any, name: str, target: Path, **kw: Any) -> tuple[Any, dict[str, Any]]:
    resp = lambda_client.invoke(
        FunctionName=name, Payload=(target / "event.json").read_bytes(), LogType="Tail", **kw
    )
    body = resp["Payload"].read()
    log = base64.b64decode(resp.get("LogResult", "")).decode(errors="replace")
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp, (body, log)
    return json.loads(body), resp


@pytest.mark.parametrize("name", ["nodejs-hello", "nodejs-esm-hello", "ruby-hello"])
def test_hello_through_boto3(name: str, lambda_client: Any, cleanup_names: set[str], tmp_path: Path) -> None:
    blueprint = bp.get(name)
    bp.write(blueprint, tmp_path)
    function = deploy_with_boto3(lambda_client, cleanup_names, blueprint, tmp_path)
    out, resp = invoke_sample(lambda_client, function, tmp_path)
    assert_hello(out, blueprint.runtime)
    assert out["requestId"] == resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    if blueprint.family == "nodejs":
        assert out["module"] == ("esm" if name == "nodejs-esm-hello" else "commonjs")


def test_s3_handler(lambda_client: Any, cleanup_names: set[str], tmp_path: Path) -> None:
    blueprint = bp.get("python-s3")
    bp.write(blueprint, tmp_path)
    function = deploy_with_boto3(lambda_client, cleanup_names, blueprint, tmp_path)
    out, _ = invoke_sample(lambda_client, function, tmp_path)
    assert [(p["eventName"], p["bucket"], p["key"], p["size"]) for p in out["processed"]] == [
        ("ObjectCreated:Put", "sourcebucket", "Happy Face.jpg", 1024),
        ("ObjectRemoved:Delete", "sourcebucket", "reports/2024 Q1+summary.csv", None),
    ]


def test_scheduled_job(endpoint: str, lambda_client: Any, cleanup_names: set[str], tmp_path: Path) -> None:
    blueprint = bp.get("python-scheduled")
    bp.write(blueprint, tmp_path)
    function = deploy_with_boto3(
        lambda_client, cleanup_names, blueprint, tmp_path, Environment={"Variables": {"RETENTION_DAYS": "7"}}
    )
    out, _ = invoke_sample(lambda_client, function, tmp_path)
    assert out == {
        "rule": "my-scheduled-rule",
        "scheduledTime": "2015-10-08T16:53:06Z",
        "retentionDays": 7,
        "cutoff": "2015-10-01T16:53:06Z",
        "deleted": 0,
    }


def test_scheduled_job_invoked_asynchronously(
    endpoint: str, lambda_client: Any, cleanup_names: set[str], tmp_path: Path
) -> None:
    """As EventBridge invokes it: InvocationType Event, 202, and the run shows in the function's log."""
    blueprint = bp.get("python-scheduled")
    bp.write(blueprint, tmp_path)
    function = deploy_with_boto3(lambda_client, cleanup_names, blueprint, tmp_path)
    event = json.loads((tmp_path / "event.json").read_text())
    event["time"] = "2024-03-01T03:00:00Z"
    try:
        resp = lambda_client.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps(event))
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NotImplementedException":
            pytest.skip(f"this Shoal has no asynchronous invoke yet: {exc.response['Error']['Message']}")
        raise
    assert resp["StatusCode"] == 202
    logs = boto3.client(
        "logs",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="e2e-secret",
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            messages = [
                e["message"]
                for page in logs.get_paginator("filter_log_events").paginate(
                    logGroupName=f"/aws/lambda/{function}"
                )
                for e in page.get("events", [])
            ]
        except logs.exceptions.ResourceNotFoundException:
            messages = []
        done = [json.loads(m) for m in messages if '"scheduled job done"' in m]
        if any(d["scheduledTime"] == "2024-03-01T03:00:00Z" for d in done):
            break
        assert time.monotonic() < deadline, f"the asynchronous run never logged; log: {messages}"
        time.sleep(0.2)
    assert [d["cutoff"] for d in done if d["scheduledTime"] == "2024-03-01T03:00:00Z"] == [
        "2024-01-31T03:00:00Z"
    ]


def _dotnet_registered() -> bool:
    try:
        module = importlib.import_module("shoal.runtimes.dotnet")
    except ModuleNotFoundError:
        return False
    try:
        return "dotnet8" in module.FAMILY.discover({})
    except Exception:  # a runtime still being built: treat it as absent
        return False


def test_dotnet_hello(lambda_client: Any, cleanup_names: set[str], tmp_path: Path) -> None:
    blueprint = bp.get("dotnet-hello")
    if not _dotnet_registered() or shutil.which("mcs") is None:
        pytest.skip(f"no dotnet8 runtime on this host: install {blueprint.install}")
    bp.write(blueprint, tmp_path)
    result = bp.build(blueprint, tmp_path)
    assert result is not None and result.built, result
    assert (tmp_path / "publish" / "HelloWorld.dll").is_file()
    function = deploy_with_boto3(lambda_client, cleanup_names, blueprint, tmp_path)
    out, _ = invoke_sample(lambda_client, function, tmp_path)
    assert_hello(out, "dotnet8")
"""The real AWS CLI against Shoal: create, wait, invoke, get, list, update, delete, and an error path."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    ACCOUNT,
    REGION,
    ROLE,
    RUNTIME,
    fixture_source,
    function_arn,
    make_zip,
    sha256_b64,
    unique_name,
)

CLI_TIMEOUT = 90


def _binary_format_args() -> list[str]:
    """``--cli-binary-format raw-in-base64-out`` where the CLI has it (v2); v1 takes raw blobs already."""
    import awscli

    major = int(awscli.__version__.split(".")[0])
    return ["--cli-binary-format", "raw-in-base64-out"] if major >= 2 else []


class Cli:
    def __init__(self, endpoint: str, home: Path) -> None:
        self.endpoint = endpoint
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(home / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_RETRY_MODE": "standard",
            "AWS_PAGER": "",
        }

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        argv = [
            sys.executable,
            "-m",
            "awscli",
            "lambda",
            *args,
            "--endpoint-url",
            self.endpoint,
            *_binary_format_args(),
            "--output",
            "json",
        ]
        return subprocess.run(
            argv, env=self.env, cwd=cwd, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False
        )

    def ok(self, *args: str, cwd: Path | None = None) -> Any:
        proc = self.run(*args, cwd=cwd)
        assert proc.returncode == 0, f"aws lambda {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
        return json.loads(proc.stdout) if proc.stdout.strip() else None


def assert_cli_error(proc: subprocess.CompletedProcess[str], code: str, operation: str, message: str) -> None:
    """The CLI's error line: ``An error occurred (CODE) when calling the OP operation[ (…)]: MESSAGE``."""
    assert proc.returncode in (254, 255), (proc.returncode, proc.stderr)
    pattern = (
        rf"An error occurred \({code}\) when calling the {operation} operation"
        rf"( \([^)]*\))?: {re.escape(message)}"
    )
    assert re.search(pattern, proc.stderr), proc.stderr


@pytest.fixture(scope="module")
def cli(endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(endpoint, tmp_path_factory.mktemp("awscli-home"))


def test_cli_function_lifecycle(cli: Cli, tmp_path: Path, cleanup_names: set[str]) -> None:
    name = unique_name("cli")
    cleanup_names.add(name)
    zip_bytes = make_zip({"app.py": fixture_source("probe.py")})
    zip_path = tmp_path / "function.zip"
    zip_path.write_bytes(zip_bytes)

    created = cli.ok(
        "create-function",
        "--function-name",
        name,
        "--runtime",
        RUNTIME,
        "--role",
        ROLE,
        "--handler",
        "app.handler",
        "--zip-file",
        f"fileb://{zip_path}",
        "--environment",
        "Variables={STAGE=cli}",
        "--timeout",
        "10",
    )
    assert created["FunctionName"] == name
    assert created["FunctionArn"] == function_arn(name)
    assert created["CodeSha256"] == sha256_b64(zip_bytes)
    assert created["CodeSize"] == len(zip_bytes)
    assert created["State"] == "Pending"
    assert created["Timeout"] == 10

    assert cli.ok("wait", "function-active-v2", "--function-name", name) is None

    out_file = tmp_path / "out.json"
    invoked = cli.ok(
        "invoke",
        "--function-name",
        name,
        "--payload",
        '{"action": "info", "from": "cli"}',
        "--log-type",
        "Tail",
        str(out_file),
    )
    assert invoked["StatusCode"] == 200
    assert invoked["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in invoked
    result = json.loads(out_file.read_text())
    assert result["event"] == {"action": "info", "from": "cli"}
    assert result["env"]["STAGE"] == "cli"
    rid = result["context"]["aws_request_id"]
    log = base64.b64decode(invoked["LogResult"]).decode()
    assert f"START RequestId: {rid} Version: $LATEST" in log
    assert f"REPORT RequestId: {rid}\t" in log

    got = cli.ok("get-function", "--function-name", name)
    assert got["Configuration"]["FunctionName"] == name
    assert got["Configuration"]["State"] == "Active"
    assert got["Code"]["RepositoryType"] == "S3"
    assert got["Code"]["Location"].startswith("http")

    partial = cli.ok("get-function-configuration", "--function-name", f"{ACCOUNT}:function:{name}")
    assert partial["FunctionName"] == name

    listed = cli.ok("list-functions")
    assert name in [f["FunctionName"] for f in listed["Functions"]]
    queried = cli.ok("list-functions", "--query", f"Functions[?FunctionName=='{name}'].Handler")
    assert queried == ["app.handler"]

    updated = cli.ok(
        "update-function-configuration",
        "--function-name",
        name,
        "--environment",
        "Variables={STAGE=updated}",
        "--memory-size",
        "256",
    )
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["MemorySize"] == 256
    assert cli.ok("wait", "function-updated-v2", "--function-name", name) is None
    state = cli.ok(
        "get-function", "--function-name", name, "--query", "Configuration.[State, LastUpdateStatus]"
    )
    assert state == ["Active", "Successful"]

    cli.ok("invoke", "--function-name", name, "--payload", '{"action": "info"}', str(out_file))
    assert json.loads(out_file.read_text())["env"]["STAGE"] == "updated"

    deleted = cli.ok("delete-function", "--function-name", name)
    assert deleted in (
        None,
        {"StatusCode": 204},
    )  # newer botocore models DeleteFunction's status as StatusCode
    missing = cli.run("get-function", "--function-name", name)
    assert missing.returncode in (254, 255)
    assert "ResourceNotFoundException" in missing.stderr


def test_cli_function_error_exits_zero_and_writes_outfile(
    cli: Cli, lambda_client: Any, make_function: Any, tmp_path: Path
) -> None:
    """§13 #1: a function error is HTTP 200: the CLI exits 0, writes the outfile, shows FunctionError."""
    name = unique_name("cli-error")
    make_function(name, {"app.py": fixture_source("probe.py")})
    out_file = tmp_path / "error.json"
    invoked = cli.ok(
        "invoke",
        "--function-name",
        name,
        "--payload",
        '{"action": "raise", "message": "cli boom"}',
        str(out_file),
    )
    assert invoked["StatusCode"] == 200
    assert invoked["FunctionError"] == "Unhandled"
    err = json.loads(out_file.read_text())
    assert err["errorType"] == "ValueError"
    assert err["errorMessage"] == "cli boom"


def test_cli_error_paths(cli: Cli, make_function: Any, tmp_path: Path) -> None:
    name = unique_name("cli-missing")
    proc = cli.run("get-function", "--function-name", name)
    assert proc.returncode in (254, 255), proc.returncode
    assert_cli_error(
        proc,
        "ResourceNotFoundException",
        "GetFunction",
        f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
    )

    existing = unique_name("cli-dup")
    make_function(existing, {"app.py": fixture_source("probe.py")})
    zip_path = tmp_path / "dup.zip"
    zip_path.write_bytes(make_zip({"app.py": fixture_source("probe.py")}))
    proc = cli.run(
        "create-function",
        "--function-name",
        existing,
        "--runtime",
        RUNTIME,
        "--role",
        ROLE,
        "--handler",
        "app.handler",
        "--zip-file",
        f"fileb://{zip_path}",
    )
    assert proc.returncode in (254, 255), proc.returncode
    assert_cli_error(
        proc, "ResourceConflictException", "CreateFunction", f"Function already exist: {existing}"
    )

    out_file = tmp_path / "never.json"
    proc = cli.run("invoke", "--function-name", name, "--payload", "{}", str(out_file))
    assert proc.returncode in (254, 255)
    assert_cli_error(proc, "ResourceNotFoundException", "Invoke", "Function not found: ")
    assert not out_file.exists()


def test_cli_versions_aliases_and_tags(cli: Cli, make_function: Any, tmp_path: Path) -> None:
    """publish-version, create-alias with routing, update-alias, invoke by alias, tags: with the real CLI."""
    name = f"cli-ver-{os.getpid()}-{int(time.time() * 1000) % 100000}"
    make_function(name, {"app.py": "import os\ndef handler(e, c):\n"
                                   "    return os.environ['AWS_LAMBDA_FUNCTION_VERSION']\n"})
    v1 = cli.ok("publish-version", "--function-name", name, "--description", "first")
    assert (v1["Version"], v1["Description"]) == ("1", "first")
    cli.ok("update-function-configuration", "--function-name", name, "--timeout", "5")
    cli.ok("wait", "function-updated-v2", "--function-name", name)
    v2 = cli.ok("publish-version", "--function-name", name)
    assert v2["Version"] == "2"
    versions = cli.ok("list-versions-by-function", "--function-name", name)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
    alias = cli.ok("create-alias", "--function-name", name, "--name", "live", "--function-version", "2",
                   "--routing-config", json.dumps({"AdditionalVersionWeights": {"1": 0.25}}))
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"1": 0.25}}
    assert alias["AliasArn"].endswith(f":function:{name}:live")
    moved = cli.ok("update-alias", "--function-name", name, "--name", "live", "--function-version", "1",
                   "--routing-config", json.dumps({"AdditionalVersionWeights": {}}))
    assert moved["FunctionVersion"] == "1" and "RoutingConfig" not in moved
    out = tmp_path / "out.json"
    result = cli.ok("invoke", "--function-name", name, "--qualifier", "live", str(out))
    assert result["ExecutedVersion"] == "1"
    assert json.loads(out.read_text()) == "1"
    arn = cli.ok("get-function", "--function-name", name)["Configuration"]["FunctionArn"]
    cli.ok("tag-resource", "--resource", arn, "--tags", "team=core,env=dev")
    assert cli.ok("list-tags", "--resource", arn)["Tags"] == {"team": "core", "env": "dev"}
    cli.ok("delete-alias", "--function-name", name, "--name", "live")
    assert cli.ok("list-aliases", "--function-name", name)["Aliases"] == []

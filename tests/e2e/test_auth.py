"""SigV4 authentication at the wire: boto3's ``lambda`` and ``logs`` clients with good and bad credentials.

The ``auth_server`` fixture decides what answers:

* once ``shoal server`` accepts ``--credentials FILE`` (``shoal server --help`` mentions it), the real server,
  started with a credentials file holding the two keys below;
* until then, a small Starlette app served by uvicorn in a thread: it runs :class:`Authenticator` exactly as
  the server does (body read, authenticate, AWS error envelope per protocol) and answers the few operations
  used here the way Shoal does, with the caller's account in the ARNs and in the Invoke result.

The tests only use what both answer alike, so nothing else changes when the fixture switches.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import pytest
from _server import ShoalServer, free_port, make_zip, runtime, wait_for
from botocore import UNSIGNED
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

REGION = "us-east-1"
KEY_A, SECRET_A, ACCOUNT_A = "AKIDE2EALPHA", "alpha/Secret+Key=0123456789abcdefghij", "111122223333"
KEY_B, SECRET_B, ACCOUNT_B = "AKIDE2EBRAVO", "bravo-secret-key-9876543210zyxwvuts", "444455556666"
ECHO = """
def handler(event, context):
    return {"event": event, "account": context.invoked_function_arn.split(":")[4]}
"""
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)


# ---- what answers ------------------------------------------------------------------------------------


class _AuthedShoalServer(ShoalServer):
    """``shoal server --credentials FILE``; ready once it answers (an unsigned probe gets a 403)."""

    def __init__(self, base: Path, credentials_file: Path) -> None:
        super().__init__(base)
        self.credentials_file = credentials_file

    def start(self) -> ShoalServer:
        for _attempt in range(3):
            self.port = free_port()
            self.endpoint = f"http://127.0.0.1:{self.port}"
            with self.log_path.open("ab") as log:
                self.proc = subprocess.Popen(
                    [
                        *(sys.executable, "-m", "shoal", "server", "--host", "127.0.0.1"),
                        *("--port", str(self.port), "--data-dir", str(self.data_dir)),
                        *("--credentials", str(self.credentials_file)),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            if self._wait_ready():
                return self
            self.stop_and_check()
        raise RuntimeError(f"shoal server did not start; its log:\n{self.log_text()}")

    def _wait_ready(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if "Shoal listening on" in self.log_text():
                try:
                    urllib.request.urlopen(f"{self.endpoint}/2015-03-31/functions", timeout=2).close()
                    status = 200
                except urllib.error.HTTPError as exc:
                    status = exc.code
                except (urllib.error.URLError, OSError):
                    status = 0
                if status == 403 and self.proc.poll() is None:
                    return True
            time.sleep(0.05)
        return False


@dataclass
class AuthServer:
    endpoint: str
    real: bool

    def client(
        self, service: str, key: str = KEY_A, secret: str = SECRET_A, *, unsigned: bool = False
    ) -> Any:
        config = BotoConfig(
            retries={"total_max_attempts": 1, "mode": "standard"},  # no retry: not even clock-skew ones
            read_timeout=70,
            connect_timeout=10,
            signature_version=UNSIGNED if unsigned else None,
        )
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=config,
        )


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    base = tmp_path_factory.mktemp("auth")
    creds = base / "credentials"
    creds.write_text(
        f"# e2e keys\n{KEY_A} {SECRET_A} {ACCOUNT_A}\n{KEY_B} {SECRET_B} {ACCOUNT_B}  # second account\n"
    )
    creds.chmod(0o600)
    server = _AuthedShoalServer(base, creds)
    server.start()
    try:
        yield AuthServer(server.endpoint, real=True)
    finally:
        server.stop_and_check()


@pytest.fixture(scope="module")
def echo_function(auth_server: AuthServer) -> Iterator[str]:
    """An echo function in account A; its full ARN."""
    client = auth_server.client("lambda")
    name = f"auth-echo-{int(time.time() * 1000) % 10**8}"
    resp = client.create_function(
        FunctionName=name,
        Runtime=runtime(),
        Role=f"arn:aws:iam::{ACCOUNT_A}:role/e2e",
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": ECHO})},
    )
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    try:
        yield str(resp["FunctionArn"])
    finally:
        client.delete_function(FunctionName=name)


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    resp = exc.value.response
    return resp["ResponseMetadata"]["HTTPStatusCode"], resp["Error"]["Code"], resp["Error"].get("Message", "")


# ---- good credentials --------------------------------------------------------------------------------


def test_list_functions(auth_server: AuthServer, echo_function: str) -> None:
    resp = auth_server.client("lambda").list_functions()
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert echo_function in [f["FunctionArn"] for f in resp["Functions"]]


def test_function_arn_names_the_callers_account(echo_function: str) -> None:
    assert echo_function == f"arn:aws:lambda:{REGION}:{ACCOUNT_A}:function:{echo_function.split(':')[-1]}"


def test_get_function_by_full_arn(auth_server: AuthServer, echo_function: str) -> None:
    client = auth_server.client("lambda")
    assert client.get_function(FunctionName=echo_function)["Configuration"]["FunctionArn"] == echo_function
    qualified = client.get_function(FunctionName=echo_function + ":$LATEST")
    assert qualified["Configuration"]["FunctionName"] == echo_function.split(":")[-1]


def test_invoke_with_payload(auth_server: AuthServer, echo_function: str) -> None:
    payload = {"text": "héllo ✓ 世界", "list": [1, 2, 3], "blob": "x" * 200_000}
    resp = auth_server.client("lambda").invoke(
        FunctionName=echo_function, Payload=json.dumps(payload).encode()
    )
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp
    assert json.loads(resp["Payload"].read()) == {"event": payload, "account": ACCOUNT_A}


def test_each_key_acts_for_its_own_account(auth_server: AuthServer, echo_function: str) -> None:
    other = auth_server.client("lambda", KEY_B, SECRET_B)
    assert echo_function not in [f["FunctionArn"] for f in other.list_functions()["Functions"]]
    with pytest.raises(ClientError) as info:  # account A's function by name, from account B: not there
        other.get_function(FunctionName=echo_function.split(":")[-1])
    assert error_of(info)[:2] == (404, "ResourceNotFoundException")


def test_logs_with_good_credentials(auth_server: AuthServer, echo_function: str) -> None:
    logs = auth_server.client("logs")
    resp = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    for group in resp["logGroups"]:
        assert f":{ACCOUNT_A}:" in group["arn"]


def test_logs_are_per_account(auth_server: AuthServer, echo_function: str) -> None:
    auth_server.client("lambda").invoke(FunctionName=echo_function, Payload=b"{}")  # writes its log group
    group = f"/aws/lambda/{echo_function.split(':')[-1]}"

    def groups(key: str, secret: str) -> list[str]:
        resp = auth_server.client("logs", key, secret).describe_log_groups(logGroupNamePrefix=group)
        return [g["logGroupName"] for g in resp["logGroups"]]

    wait_for(lambda: groups(KEY_A, SECRET_A) == [group], what=f"log group {group} in account A")
    assert groups(KEY_B, SECRET_B) == []


# ---- bad credentials: Lambda REST API (403s) ---------------------------------------------------------


def test_wrong_secret(auth_server: AuthServer, echo_function: str) -> None:
    client = auth_server.client("lambda", KEY_A, "not-the-secret")
    for call in (
        client.list_functions,
        lambda: client.get_function(FunctionName=echo_function),
        lambda: client.invoke(FunctionName=echo_function, Payload=b'{"a": 1}'),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert error_of(info) == (403, "InvalidSignatureException", MISMATCH)


def test_unknown_key(auth_server: AuthServer, echo_function: str) -> None:
    client = auth_server.client("lambda", "AKIDNOBODYKNOWS", SECRET_A)
    with pytest.raises(ClientError) as info:
        client.invoke(FunctionName=echo_function, Payload=b"{}")
    assert error_of(info) == (
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )


def test_session_token_is_refused(auth_server: AuthServer) -> None:
    client = boto3.client(
        "lambda",
        endpoint_url=auth_server.endpoint,
        region_name=REGION,
        aws_access_key_id=KEY_A,
        aws_secret_access_key=SECRET_A,
        aws_session_token="a-token-shoal-never-issued",
        config=BotoConfig(retries={"total_max_attempts": 1}),
    )
    with pytest.raises(ClientError) as info:
        client.list_functions()
    assert error_of(info)[:2] == (403, "UnrecognizedClientException")


def test_unsigned(auth_server: AuthServer) -> None:
    with pytest.raises(ClientError) as info:
        auth_server.client("lambda", unsigned=True).list_functions()
    assert error_of(info) == (403, "MissingAuthenticationTokenException", "Missing Authentication Token")


def test_expired_signature(auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch) -> None:
    late = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=6)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: late)
    with pytest.raises(ClientError) as info:
        auth_server.client("lambda").list_functions()
    status, code, message = error_of(info)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith(f"Signature expired: {late:%Y%m%dT%H%M%S}Z is now earlier than ")
    assert message.endswith(" - 5 min.)")


def test_signed_for_the_wrong_service(auth_server: AuthServer) -> None:
    client = auth_server.client("lambda")
    client._request_signer._signing_name = "s3"  # botocore's signer, told the wrong signing name
    with pytest.raises(ClientError) as info:
        client.list_functions()
    assert error_of(info) == (
        403,
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'lambda'. ",
    )


# ---- bad credentials: CloudWatch Logs JSON 1.1 API (400s) --------------------------------------------


def test_logs_wrong_secret(auth_server: AuthServer) -> None:
    with pytest.raises(ClientError) as info:
        auth_server.client("logs", KEY_A, "nope").describe_log_groups()
    assert error_of(info) == (400, "InvalidSignatureException", MISMATCH)


def test_logs_unknown_key(auth_server: AuthServer) -> None:
    with pytest.raises(ClientError) as info:
        auth_server.client("logs", "AKIDNOBODYKNOWS", "x").filter_log_events(logGroupName="/aws/lambda/x")
    assert error_of(info) == (
        400,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )


def test_logs_unsigned(auth_server: AuthServer) -> None:
    with pytest.raises(ClientError) as info:
        auth_server.client("logs", unsigned=True).describe_log_groups()
    assert error_of(info) == (
        400,
        "MissingAuthenticationTokenException",
        "Request is missing Authentication Token",
    )


def test_logs_signed_with_the_lambda_signing_name(auth_server: AuthServer) -> None:
    logs = auth_server.client("logs")
    logs._request_signer._signing_name = "lambda"
    with pytest.raises(ClientError) as info:
        logs.describe_log_groups()
    assert error_of(info) == (
        400,
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'logs'. ",
    )


def test_accounts_are_isolated_and_a_resource_policy_opens_invoke(
    auth_server: AuthServer, echo_function: str
) -> None:
    """Account B cannot see or run account A's function until A's resource policy lets it invoke."""
    alpha = auth_server.client("lambda", KEY_A, SECRET_A)
    bravo = auth_server.client("lambda", KEY_B, SECRET_B)
    name = echo_function.split(":")[-1]
    assert name not in [f["FunctionName"] for f in bravo.list_functions()["Functions"]]
    with pytest.raises(ClientError) as info:
        bravo.invoke(FunctionName=echo_function, Payload=b"{}")
    status, code, message = error_of(info)
    assert (status, code) == (403, "AccessDeniedException")
    assert f"arn:aws:iam::{ACCOUNT_B}:root is not authorized to perform: lambda:InvokeFunction" in message
    with pytest.raises(ClientError) as info:
        bravo.get_function(FunctionName=echo_function)
    assert error_of(info)[:2] == (403, "AccessDeniedException")
    alpha.add_permission(FunctionName=name, StatementId="let-bravo", Action="lambda:InvokeFunction",
                         Principal=ACCOUNT_B)
    try:
        resp = bravo.invoke(FunctionName=echo_function, Payload=b'{"from": "bravo"}')
        assert resp["StatusCode"] == 200
        assert json.loads(resp["Payload"].read())["account"] == ACCOUNT_A  # it runs in the owner's account
        with pytest.raises(ClientError) as info:  # invoking is all the policy allows
            bravo.get_function(FunctionName=echo_function)
        assert error_of(info)[:2] == (403, "AccessDeniedException")
    finally:
        alpha.remove_permission(FunctionName=name, StatementId="let-bravo")
    with pytest.raises(ClientError) as info:
        bravo.invoke(FunctionName=echo_function, Payload=b"{}")
    assert error_of(info)[:2] == (403, "AccessDeniedException")

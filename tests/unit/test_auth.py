"""SigV4 verification against requests signed by botocore itself, and the credentials file parser."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials
from starlette.requests import Request

from shoal.api import auth
from shoal.api.auth import (
    Authenticator,
    AuthError,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
    canonical_query,
    canonical_uri,
    error_response,
)
from shoal.core.accounts import Credential, CredentialsFileError, CredentialStore
from shoal.core.clock import FakeClock

KEY, SECRET, ACCOUNT = "AKIDSHOALTEST", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "111122223333"
KEY2, SECRET2, ACCOUNT2 = "AKIDOTHER", "another+secret/with=odd/chars", "444455556666"
NOW = dt.datetime(2024, 1, 1, 0, 10, 0, tzinfo=dt.UTC)
ENDPOINT = "http://127.0.0.1:9000"
ARN = "arn:aws:lambda:us-east-1:111122223333:function:my-fn"


@pytest.fixture
def store() -> CredentialStore:
    return CredentialStore([Credential(KEY, SECRET, ACCOUNT), Credential(KEY2, SECRET2, ACCOUNT2)])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW.timestamp())


@pytest.fixture
def authn(store: CredentialStore, clock: FakeClock) -> Authenticator:
    return Authenticator(store, clock=clock)


@pytest.fixture
def signing_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dt.datetime], None]]:
    """botocore signs at this instant (it reads ``botocore.auth.get_current_datetime``)."""
    when = [NOW]
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: when[0].replace(tzinfo=None))

    def set_time(t: dt.datetime) -> None:
        when[0] = t

    yield set_time


# ---- helpers: a botocore-signed request as an ASGI scope ---------------------------------------------


class Wire:
    """One HTTP request as the server receives it."""

    def __init__(self, method: str, url: str, headers: dict[str, Any], body: bytes) -> None:
        parts = urlsplit(url)
        self.method = method
        self.raw_path = parts.path.encode("ascii")
        self.query = parts.query.encode("ascii")
        self.headers: dict[str, str] = {
            k.lower(): v.decode("latin-1") if isinstance(v, bytes) else v for k, v in headers.items()
        }
        self.headers.setdefault("host", parts.netloc)
        self.body = body

    def scope(self) -> dict[str, Any]:
        return {
            "type": "http",
            "method": self.method,
            "path": unquote(self.raw_path.decode()),
            "raw_path": self.raw_path,
            "query_string": self.query,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()],
        }

    def without(self, name: str) -> Wire:
        self.headers.pop(name.lower(), None)
        return self

    def with_header(self, name: str, value: str) -> Wire:
        self.headers[name.lower()] = value
        return self


def sign(
    method: str,
    url: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    key: str = KEY,
    secret: str = SECRET,
    service: str = "lambda",
    region: str = "us-east-1",
) -> Wire:
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    botocore.auth.SigV4Auth(Credentials(key, secret), service, region).add_auth(request)
    prepared = request.prepare()
    return Wire(method, prepared.url, dict(prepared.headers), body)


def presign(url: str, *, expires: int = 300, service: str = "lambda") -> Wire:
    request = AWSRequest(method="GET", url=url)
    botocore.auth.SigV4QueryAuth(Credentials(KEY, SECRET), service, "eu-west-1", expires).add_auth(request)
    prepared = request.prepare()
    return Wire("GET", prepared.url, dict(prepared.headers), b"")


def authenticate(authn: Authenticator, wire: Wire) -> str:
    return asyncio.run(authn.authenticate(Request(wire.scope()), wire.body))


def rejected(authn: Authenticator, wire: Wire) -> AuthError:
    with pytest.raises(AuthError) as info:
        authenticate(authn, wire)
    return info.value


# ---- requests signed by botocore ---------------------------------------------------------------------

pytestmark = pytest.mark.usefixtures("signing_time")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/2015-03-31/functions/", b""),
        ("GET", "/2015-03-31/functions/?MaxItems=10&Marker=abc%2Fdef%3D%3D", b""),
        ("POST", "/2015-03-31/functions", b'{"FunctionName": "f"}'),
        ("PUT", "/2015-03-31/functions/f/configuration", b'{"Timeout": 30}'),
        ("DELETE", "/2015-03-31/functions/f?Qualifier=3", b""),
        ("POST", f"/2015-03-31/functions/{ARN.replace(':', '%3A')}/invocations", b'{"k": 1}'),
        ("GET", "/2015-03-31/functions/my-fn%3A%24LATEST", b""),
        ("GET", "/2015-03-31/functions/f/versions?Marker=%E2%9C%93%20x&MaxItems=5", b""),
        ("POST", "/2015-03-31/functions/f/invocations", "héllo ✓ 世界".encode()),
        ("POST", "/2015-03-31/functions/f/invocations", b""),
        ("POST", "/2015-03-31/functions/f/invocations", b"\x00" * (5 * 1024 * 1024)),
        ("GET", "/2015-03-31/functions/a%2Fb/./../f//x", b""),
    ],
)
def test_botocore_signed_requests_are_accepted(
    authn: Authenticator, method: str, path: str, body: bytes
) -> None:
    wire = sign(method, ENDPOINT + path, body, {"Content-Type": "application/json"})
    assert authenticate(authn, wire) == ACCOUNT


def test_each_key_answers_its_own_account(authn: Authenticator) -> None:
    wire = sign("GET", ENDPOINT + "/2015-03-31/functions/", key=KEY2, secret=SECRET2)
    assert authenticate(authn, wire) == ACCOUNT2


def test_any_region_is_accepted(authn: Authenticator) -> None:
    for region in ("eu-west-1", "ap-southeast-2", "local"):
        assert authenticate(authn, sign("GET", ENDPOINT + "/x", region=region)) == ACCOUNT


def test_repeated_query_keys_and_empty_values(authn: Authenticator) -> None:
    wire = sign("GET", ENDPOINT + "/2015-03-31/functions/?b=2&a=&b=1&c")
    assert authenticate(authn, wire) == ACCOUNT


def test_host_with_default_port_stripped(authn: Authenticator) -> None:
    wire = sign("GET", "http://lambda.example.test/2015-03-31/functions/")
    assert wire.headers["host"] == "lambda.example.test"
    assert authenticate(authn, wire) == ACCOUNT


def test_content_sha256_header(authn: Authenticator) -> None:
    body = b'{"a": 1}'
    digest = hashlib.sha256(body).hexdigest()
    wire = sign("POST", ENDPOINT + "/p", body, {"X-Amz-Content-SHA256": digest})
    assert authenticate(authn, wire) == ACCOUNT
    unsigned = sign("POST", ENDPOINT + "/p", body, {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert authenticate(authn, unsigned) == ACCOUNT
    lying = sign("POST", ENDPOINT + "/p", b"other", {"X-Amz-Content-SHA256": digest})
    err = rejected(authn, lying)
    assert isinstance(err, InvalidSignatureException)
    assert "x-amz-content-sha256" in err.message


def test_date_header_instead_of_x_amz_date(authn: Authenticator) -> None:
    wire = sign("GET", ENDPOINT + "/x")
    # re-sign by hand with a Date header: botocore always uses X-Amz-Date, so build the claim ourselves
    amz = wire.headers.pop("x-amz-date")
    wire.headers["date"] = "Mon, 01 Jan 2024 00:10:00 GMT"
    wire.headers["authorization"] = wire.headers["authorization"].replace("x-amz-date", "date")
    prefix = "\n".join(
        ["GET", "/x", "", "date:" + wire.headers["date"], "host:" + wire.headers["host"], "", "date;host"]
    )
    canonical = prefix + "\n" + hashlib.sha256(b"").hexdigest()
    scope = f"{amz[:8]}/us-east-1/lambda/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = authn._signing_key(SECRET, amz[:8], "us-east-1", "lambda")
    import hmac

    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    wire.headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={KEY}/{scope}, SignedHeaders=date;host, Signature={sig}"
    )
    assert authenticate(authn, wire) == ACCOUNT


# ---- real boto3 clients, their HTTP requests captured before they leave -----------------------------


def _capture(service: str, call: Callable[[Any], Any], *, key: str = KEY, secret: str = SECRET) -> Wire:
    client = boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name="us-west-2",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=BotoConfig(retries={"total_max_attempts": 1}),
    )
    captured: list[Wire] = []

    class _Sent(Exception):
        pass

    def before_send(request: Any, **_: Any) -> None:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body = body.read()
        captured.append(Wire(request.method, request.url, dict(request.headers), body))
        raise _Sent

    client.meta.events.register("before-send", before_send)
    with pytest.raises(_Sent):
        call(client)
    return captured[0]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.list_functions(MaxItems=5, Marker="a/b=="),
        lambda c: c.get_function(FunctionName=ARN),
        lambda c: c.get_function(FunctionName="my-fn", Qualifier="$LATEST"),
        lambda c: c.get_function_configuration(FunctionName=ARN + ":$LATEST"),
        lambda c: c.invoke(FunctionName=ARN + ":prod", Payload=json.dumps({"ünï": "✓"}).encode()),
        lambda c: c.invoke(FunctionName="f", InvocationType="Event", Payload=b""),
        lambda c: c.delete_function(FunctionName="arn:aws:lambda:us-west-2:111122223333:function:x"),
        lambda c: c.put_function_concurrency(FunctionName="f", ReservedConcurrentExecutions=3),
        lambda c: c.list_versions_by_function(FunctionName=ARN),
    ],
)
def test_boto3_lambda_requests(authn: Authenticator, call: Callable[[Any], Any]) -> None:
    wire = _capture("lambda", call)
    assert authenticate(authn, wire) == ACCOUNT


def test_boto3_arn_path_is_signed_double_encoded(authn: Authenticator) -> None:
    wire = _capture("lambda", lambda c: c.get_function(FunctionName=ARN + ":$LATEST"))
    assert b"%3A" in wire.raw_path and b"%24LATEST" in wire.raw_path
    assert "%253A" in canonical_uri(wire.raw_path)
    assert authenticate(authn, wire) == ACCOUNT


def test_boto3_logs_requests(authn: Authenticator) -> None:
    wire = _capture("logs", lambda c: c.filter_log_events(logGroupName="/aws/lambda/f", limit=5))
    assert wire.headers["x-amz-target"] == "Logs_20140328.FilterLogEvents"
    assert authenticate(authn, wire) == ACCOUNT


def test_logs_request_signed_for_lambda_is_refused_with_the_json_envelope(authn: Authenticator) -> None:
    wire = sign(
        "POST",
        ENDPOINT + "/",
        b"{}",
        {"X-Amz-Target": "Logs_20140328.DescribeLogGroups", "Content-Type": "application/x-amz-json-1.1"},
        service="lambda",
    )
    err = rejected(authn, wire)
    assert (err.code, err.status) == ("InvalidSignatureException", 400)
    assert err.message == "Credential should be scoped to correct service: 'logs'. "
    resp = error_response(err, "rid-1")
    assert resp.status_code == 400
    assert json.loads(bytes(resp.body)) == {"__type": "InvalidSignatureException", "message": err.message}
    assert resp.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert resp.headers["content-type"] == "application/x-amz-json-1.1"


# ---- refusals ----------------------------------------------------------------------------------------


def test_wrong_secret(authn: Authenticator) -> None:
    err = rejected(authn, sign("GET", ENDPOINT + "/2015-03-31/functions/", secret="not-the-secret"))
    assert isinstance(err, InvalidSignatureException)
    assert (err.status, err.error_class) == (403, "User")
    assert err.message == (
        "The request signature we calculated does not match the signature you provided. Check your AWS "
        "Secret Access Key and signing method. Consult the service documentation for details."
    )
    resp = error_response(err, "rid")
    assert resp.status_code == 403 and resp.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert json.loads(bytes(resp.body)) == {"Type": "User", "message": err.message}


def test_unknown_key(authn: Authenticator) -> None:
    err = rejected(authn, sign("GET", ENDPOINT + "/x", key="AKIDNOBODY"))
    assert isinstance(err, UnrecognizedClientException)
    assert (err.status, err.message) == (403, "The security token included in the request is invalid.")


def test_unknown_key_on_logs_is_400(authn: Authenticator) -> None:
    wire = _capture("logs", lambda c: c.describe_log_groups(), key="AKIDNOBODY")
    err = rejected(authn, wire)
    assert (err.code, err.status) == ("UnrecognizedClientException", 400)


def test_session_token_is_refused(authn: Authenticator) -> None:
    request = AWSRequest(method="GET", url=ENDPOINT + "/x")
    botocore.auth.SigV4Auth(Credentials(KEY, SECRET, "some-session-token"), "lambda", "us-east-1").add_auth(
        request
    )
    prepared = request.prepare()
    err = rejected(authn, Wire("GET", prepared.url, dict(prepared.headers), b""))
    assert isinstance(err, UnrecognizedClientException)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda w: setattr(w, "body", b'{"FunctionName": "g"}'),
        lambda w: setattr(w, "method", "PUT"),
        lambda w: setattr(w, "raw_path", b"/2015-03-31/functions/other"),
        lambda w: setattr(w, "query", b"MaxItems=11"),
        lambda w: w.with_header("content-type", "text/plain"),
        lambda w: w.with_header("host", "evil.example"),
    ],
)
def test_tampered_requests(authn: Authenticator, tamper: Callable[[Wire], Any]) -> None:
    wire = sign(
        "POST",
        ENDPOINT + "/2015-03-31/functions/f?MaxItems=10",
        b'{"FunctionName": "f"}',
        {"Content-Type": "a/b"},
    )
    tamper(wire)
    err = rejected(authn, wire)
    assert isinstance(err, InvalidSignatureException)


def test_expired(authn: Authenticator, clock: FakeClock, signing_time: Callable[[dt.datetime], None]) -> None:
    signing_time(dt.datetime(2024, 1, 1, 0, 0, 0, tzinfo=dt.UTC))
    wire = sign("GET", ENDPOINT + "/x")
    err = rejected(authn, wire)
    assert isinstance(err, InvalidSignatureException) and err.status == 403
    assert err.message == (
        "Signature expired: 20240101T000000Z is now earlier than 20240101T000500Z (20240101T001000Z - 5 min.)"
    )


def test_clock_window_edges(authn: Authenticator, clock: FakeClock) -> None:
    wire = sign("GET", ENDPOINT + "/x")  # signed at NOW
    clock.advance(300)
    assert authenticate(authn, wire) == ACCOUNT  # exactly 5 minutes old: still good
    clock.advance(1)
    assert "Signature expired" in rejected(authn, wire).message
    clock.advance(-301 - 300)
    assert authenticate(authn, wire) == ACCOUNT  # 5 minutes in the future: still good
    clock.advance(-1)
    err = rejected(authn, wire)
    assert err.message == (
        "Signature not yet current: 20240101T001000Z is still later than 20240101T000959Z "
        "(20240101T000459Z + 5 min.)"
    )


def test_missing_authorization(authn: Authenticator) -> None:
    wire = sign("GET", ENDPOINT + "/2015-03-31/functions/").without("authorization")
    err = rejected(authn, wire)
    assert isinstance(err, MissingAuthenticationTokenException)
    assert (err.status, err.message) == (403, "Missing Authentication Token")


def test_missing_authorization_on_logs(authn: Authenticator) -> None:
    wire = _capture("logs", lambda c: c.describe_log_groups()).without("authorization")
    err = rejected(authn, wire)
    assert (err.code, err.status, err.message) == (
        "MissingAuthenticationTokenException",
        400,
        "Request is missing Authentication Token",
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "Bearer abc",
            "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' "
            "parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=Bearer abc",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential={KEY}/20240101/us-east-1/lambda/aws4_request",
            "Authorization header requires 'Signature' parameter. Authorization header requires "
            f"'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 Credential={KEY}/20240101/us-east-1/"
            "lambda/aws4_request",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential= {KEY}/20240101/us-east-1/lambda/aws4_request SignedHeaders=host, "
            "Signature=00",
            None,
        ),
        ("AWS4-HMAC-SHA512 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00", None),
        ("AWS4-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=00", None),
    ],
)
def test_malformed_authorization(authn: Authenticator, header: str, expected: str | None) -> None:
    wire = sign("GET", ENDPOINT + "/x").with_header("authorization", header)
    err = rejected(authn, wire)
    assert isinstance(err, IncompleteSignatureException), err.message
    assert err.status == 400
    if expected is not None:
        assert err.message == expected


def test_malformed_messages(authn: Authenticator) -> None:
    def message(header: str) -> str:
        return rejected(authn, sign("GET", ENDPOINT + "/x").with_header("authorization", header)).message

    assert message("AWS4-HMAC-SHA512 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00") == (
        "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'"
    )
    assert message("AWS4-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=00") == (
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
        "got 'a/b/c'"
    )
    assert "not a valid key=value pair (missing equal-sign)" in message(
        "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, junk"
    )


def test_missing_date(authn: Authenticator) -> None:
    wire = sign("GET", ENDPOINT + "/x").without("x-amz-date")
    err = rejected(authn, wire)
    assert isinstance(err, IncompleteSignatureException)
    assert err.message.startswith(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization="
    )


def test_bad_date(authn: Authenticator) -> None:
    wire = sign("GET", ENDPOINT + "/x").with_header("x-amz-date", "2024-01-01T00:10:00Z")
    err = rejected(authn, wire)
    assert isinstance(err, IncompleteSignatureException)
    assert err.message == (
        "Date must be in ISO-8601 'basic format'. Got '2024-01-01T00:10:00Z'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )


def test_scope_date_must_match(authn: Authenticator) -> None:
    wire = sign("GET", ENDPOINT + "/x")
    wire.headers["authorization"] = wire.headers["authorization"].replace("/20240101/", "/20240102/")
    err = rejected(authn, wire)
    assert isinstance(err, InvalidSignatureException)
    assert err.message == (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
        "'20240102' != '20240101', from '20240101T001000Z'."
    )


def test_wrong_service(authn: Authenticator) -> None:
    err = rejected(authn, sign("GET", ENDPOINT + "/2015-03-31/functions/", service="s3"))
    assert isinstance(err, InvalidSignatureException)
    assert (err.status, err.message) == (403, "Credential should be scoped to correct service: 'lambda'. ")


def test_wrong_terminator(authn: Authenticator) -> None:
    wire = sign("GET", ENDPOINT + "/x")
    wire.headers["authorization"] = wire.headers["authorization"].replace("aws4_request", "aws5_request")
    err = rejected(authn, wire)
    assert "valid terminator: 'aws4_request', not 'aws5_request'" in err.message


def test_host_must_be_signed(authn: Authenticator) -> None:
    wire = sign("GET", ENDPOINT + "/x")
    wire.headers["authorization"] = wire.headers["authorization"].replace("host;", "")
    err = rejected(authn, wire)
    assert err.message == "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."


# ---- presigned URLs ----------------------------------------------------------------------------------


def test_presigned_url(authn: Authenticator, clock: FakeClock) -> None:
    wire = presign(ENDPOINT + f"/2015-03-31/functions/{ARN.replace(':', '%3A')}?Qualifier=1", expires=120)
    assert b"X-Amz-Signature=" in wire.query and "authorization" not in wire.headers
    assert authenticate(authn, wire) == ACCOUNT
    clock.advance(121)
    assert "Signature expired" in rejected(authn, wire).message


def test_presigned_url_tampered_or_incomplete(authn: Authenticator) -> None:
    wire = presign(ENDPOINT + "/2015-03-31/functions/f")
    wire.query = wire.query.replace(b"/functions/f", b"")
    wire.raw_path = b"/2015-03-31/functions/g"
    assert isinstance(rejected(authn, wire), InvalidSignatureException)
    wire = presign(ENDPOINT + "/2015-03-31/functions/f")
    wire.query = b"&".join(p for p in wire.query.split(b"&") if not p.startswith(b"X-Amz-Signature="))
    err = rejected(authn, wire)
    assert isinstance(err, IncompleteSignatureException)
    assert err.message == (
        "AWS query-string parameters must include 'X-Amz-Signature'. Re-examine the query-string parameters."
    )


def test_presigned_and_header_together(authn: Authenticator) -> None:
    wire = presign(ENDPOINT + "/x").with_header("authorization", "AWS4-HMAC-SHA256 Credential=x")
    err = rejected(authn, wire)
    assert isinstance(err, InvalidSignatureException)
    assert "Found both 'X-Amz-Algorithm'" in err.message


# ---- dev mode, keys, canonical forms -----------------------------------------------------------------


def test_dev_mode_accepts_anything() -> None:
    dev = Authenticator(None, default_account_id="123456789012")
    assert not dev.enabled
    assert "any credentials are accepted" in dev.describe()
    for wire in (
        sign("GET", ENDPOINT + "/x"),
        sign("GET", ENDPOINT + "/x").without("authorization"),
        sign("GET", ENDPOINT + "/x", secret="wrong").with_header("authorization", "garbage"),
    ):
        assert authenticate(dev, wire) == "123456789012"
    assert dev.verify("GET", b"/", b"", []) == "123456789012"


def test_describe(authn: Authenticator) -> None:
    assert authn.enabled
    assert authn.describe() == "auth: SigV4, 2 access keys for 2 accounts"


def test_signing_key_cache(authn: Authenticator) -> None:
    for _ in range(3):
        assert authenticate(authn, sign("GET", ENDPOINT + "/x")) == ACCOUNT
    authenticate(authn, sign("GET", ENDPOINT + "/x", region="eu-west-1"))
    assert len(authn._keys) == 2


def test_sync_verify(authn: Authenticator) -> None:
    wire = sign("POST", ENDPOINT + "/p?a=1", b"body")
    headers = [(k.encode(), v.encode()) for k, v in wire.headers.items()]
    assert authn.verify("POST", wire.raw_path, wire.query, headers, b"body") == ACCOUNT


def test_repeated_headers_are_joined(authn: Authenticator) -> None:
    request = AWSRequest(method="GET", url=ENDPOINT + "/x")
    request.headers.add_header("X-Custom", " a   b ")
    request.headers.add_header("X-Custom", "c")
    botocore.auth.SigV4Auth(Credentials(KEY, SECRET), "lambda", "us-east-1").add_auth(request)
    assert "x-custom" in request.headers["Authorization"]
    raw = [(b"host", b"127.0.0.1:9000"), (b"x-custom", b" a   b "), (b"x-custom", b"c")]
    raw += [(k.lower().encode(), v.encode()) for k, v in request.headers.items() if k.lower() != "x-custom"]
    assert authn.verify("GET", b"/x", b"", raw) == ACCOUNT
    with pytest.raises(InvalidSignatureException):
        authn.verify("GET", b"/x", b"", [h for h in raw if h != (b"x-custom", b"c")])


def test_canonical_forms() -> None:
    assert canonical_uri(b"") == "/"
    assert canonical_uri(b"/a%3Ab/$x~y") == "/a%253Ab/%24x~y"
    assert canonical_uri(b"/a//b/./c/../d/") == "/a/b/d/"
    assert canonical_query(b"b=2&a=x%20y&a=%2a&c") == "a=%2A&a=x%20y&b=2&c="
    assert canonical_query(b"X-Amz-Signature=abc&z=1", drop_signature=True) == "z=1"
    assert canonical_query(b"k=a+b") == "k=a%2Bb"


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/",
        "/a/b/",
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af%3A%24LATEST/invocations",
        "/a%2Fb",
        "/a b",
        "/\u00fc/\u4e16",
        "/a//b/../c/./d",
        "/a+b=c&d;e,f@g!h*i'j(k)",
        "/~x_y-z.w",
        "/%7e%2a",
    ],
)
def test_canonical_uri_matches_botocore(path: str) -> None:
    from urllib.parse import quote

    from botocore.utils import normalize_url_path

    assert canonical_uri(path.encode()) == quote(normalize_url_path(path), safe="/~")


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"MaxItems": "10"},
        {"Marker": "a/b+c=d&e", "Qualifier": "$LATEST", "FunctionVersion": "ALL"},
        {"k": "\u00fc \u4e16 ~*'()!", "empty": ""},
    ],
)
def test_canonical_query_matches_botocore(params: dict[str, str]) -> None:
    from botocore.utils import percent_encode_sequence

    signer = botocore.auth.SigV4Auth(Credentials(KEY, SECRET), "lambda", "us-east-1")
    wire = percent_encode_sequence(params).encode()
    assert canonical_query(wire) == signer._canonical_query_string_params(params)


def test_large_bodies_are_hashed_off_the_loop(authn: Authenticator, monkeypatch: pytest.MonkeyPatch) -> None:
    threaded: list[int] = []
    real = asyncio.to_thread

    async def spy(fn: Any, *args: Any) -> Any:
        threaded.append(len(args[0]))
        return await real(fn, *args)

    monkeypatch.setattr(auth.asyncio, "to_thread", spy)
    body = b"x" * (auth.HASH_IN_THREAD_ABOVE + 1)
    assert authenticate(authn, sign("POST", ENDPOINT + "/p", body)) == ACCOUNT
    assert authenticate(authn, sign("POST", ENDPOINT + "/p", b"small")) == ACCOUNT
    assert threaded == [len(body)]


# ---- the credentials file ----------------------------------------------------------------------------


def test_credentials_file(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text(
        "# key id   secret   account\n"
        "\n"
        f"{KEY}   {SECRET}   {ACCOUNT}\n"
        f"   {KEY2}\t{SECRET2} {ACCOUNT2}   # the CI runner\n"
        "third-key s3cr3t 111122223333\n"
    )
    path.chmod(0o600)
    store = CredentialStore.from_file(path)
    assert len(store) == 3
    assert store.lookup(KEY) == Credential(KEY, SECRET, ACCOUNT)
    cred = store.lookup(KEY2)
    assert cred is not None and (cred.secret_access_key, cred.account_id) == (SECRET2, ACCOUNT2)
    assert store.lookup("nobody") is None
    assert store.accounts == {ACCOUNT, ACCOUNT2}
    assert SECRET not in repr(store.lookup(KEY))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{KEY} {SECRET}\n", "line 1: expected ACCESS_KEY_ID SECRET_ACCESS_KEY ACCOUNT_ID"),
        (f"\n# c\n{KEY} {SECRET} {ACCOUNT} extra\n", "line 3: expected ACCESS_KEY_ID"),
        (f"{KEY} {SECRET} 12345\n", "line 1: account id must be 12 digits, got '12345'"),
        (f"{KEY} {SECRET} 12345678901a\n", "line 1: account id must be 12 digits"),
        (
            f"{KEY} {SECRET} {ACCOUNT}\n{KEY} other {ACCOUNT2}\n",
            "line 2: access key id AKIDSHOALTEST is already",
        ),
        (f"bad/key {SECRET} {ACCOUNT}\n", "line 1: access key id 'bad/key' must be"),
    ],
)
def test_credentials_file_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "creds"
    path.write_text(text)
    with pytest.raises(CredentialsFileError) as info:
        CredentialStore.from_file(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)
    assert SECRET not in str(info.value)


def test_credentials_file_missing(tmp_path: Path) -> None:
    with pytest.raises(CredentialsFileError, match="cannot read the credentials file"):
        CredentialStore.from_file(tmp_path / "nope")


def test_credentials_file_readable_by_others_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "creds"
    path.write_text(f"{KEY} {SECRET} {ACCOUNT}\n")
    path.chmod(0o644)
    CredentialStore.from_file(path)
    assert "chmod 600" in caplog.text


def test_store_refuses_duplicates_and_bad_accounts() -> None:
    with pytest.raises(ValueError, match="given twice"):
        CredentialStore([Credential(KEY, "a", ACCOUNT), Credential(KEY, "b", ACCOUNT)])
    with pytest.raises(ValueError, match="12 digits"):
        CredentialStore([Credential(KEY, "a", "1")])


# ---- reading the body before authentication ----------------------------------------------------------


def _streaming_request(chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> Request:
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/", "raw_path": b"/", "query_string": b""}
    return Request({**scope, "headers": headers}, receive)


def test_read_body_is_kept_for_later_readers() -> None:
    async def go() -> tuple[bytes, bytes]:
        request = _streaming_request([b"ab", b"cd"], [])
        body = await auth.read_body(request)
        again = b"".join([c async for c in request.stream()])
        return body, again

    assert asyncio.run(go()) == (b"abcd", b"abcd")


def test_read_body_limit() -> None:
    from shoal.core.errors import RequestEntityTooLargeException

    with pytest.raises(RequestEntityTooLargeException):
        asyncio.run(auth.read_body(_streaming_request([b"x"], [(b"content-length", b"11")]), limit=10))
    with pytest.raises(RequestEntityTooLargeException):
        asyncio.run(auth.read_body(_streaming_request([b"x" * 6, b"x" * 6], []), limit=10))

"""Client authentication: AWS Signature Version 4, verified against configured credentials (trust zone 5).

:class:`Authenticator` answers the caller's account id for a request, or raises the error AWS answers:

===================================== ====== ============================================================
error                                 status when
===================================== ====== ============================================================
MissingAuthenticationTokenException   403    no ``Authorization`` header and no ``X-Amz-Algorithm`` query
IncompleteSignatureException          400    the header or query lacks a part, an unsupported algorithm,
                                             a malformed credential scope or date
UnrecognizedClientException           403    unknown access key id, or a session token (none are issued)
InvalidSignatureException             403    signature mismatch, expired or future date, the wrong service
                                             in the credential scope
===================================== ====== ============================================================

The CloudWatch Logs JSON 1.1 API (``X-Amz-Target: Logs_20140328.*``, signing name ``logs``) answers the same
errors with HTTP 400 and its own envelope ``{"__type": …, "message": …}``, as AWS does; render with
:func:`error_response`.

The canonical request follows the SigV4 specification for services other than S3, which is what botocore
signs: the URI path exactly as sent (``scope["raw_path"]``), dot segments and repeated slashes removed, then
percent-encoded once more (so ``%3A`` in an ARN is signed as ``%253A``); query parameters decoded,
re-encoded with RFC 3986 unreserved characters and sorted; the listed headers, trimmed; the SHA-256 of the
body (or ``X-Amz-Content-Sha256`` when the client sent it). Presigned URLs (``X-Amz-Algorithm``,
``X-Amz-Credential``, ``X-Amz-Date``, ``X-Amz-Expires``, ``X-Amz-SignedHeaders``, ``X-Amz-Signature`` in the
query) are verified too. Signing keys are cached per (secret, date, region, service), so a verification is
one SHA-256 of the body, one of the canonical request and one HMAC.

Without credentials (embedded dev mode) every request is accepted as the default account, signed or not.
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import quote_from_bytes, unquote_to_bytes

from starlette.requests import Request
from starlette.responses import Response

from shoal.api.errors import error_response as _lambda_error_response
from shoal.core.accounts import CredentialStore
from shoal.core.clock import Clock, SystemClock
from shoal.core.errors import ApiError, RequestEntityTooLargeException

log = logging.getLogger("shoal.api.auth")

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
MAX_SKEW = 300.0  # seconds a request's date may differ from the server's clock ("5 min.")
MAX_PRESIGN_EXPIRES = 604_800  # seven days, as AWS
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
LOGS_TARGET_PREFIX = "Logs_20140328."
LOGS_CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_BODY = 69_905_067  # the largest Lambda request (CreateFunction); per-operation limits apply later
HASH_IN_THREAD_ABOVE = 256 * 1024  # bytes of body hashed off the event loop (hashlib releases the GIL)
_KEY_CACHE_MAX = 4096

# ---- errors ------------------------------------------------------------------------------------------


class AuthError(ApiError):
    """An authentication failure. ``json_protocol`` is true for the CloudWatch Logs JSON 1.1 API, which
    answers every one of them with HTTP 400 and a ``__type`` envelope."""

    error_class = "User"

    def __init__(self, message: str, *, json_protocol: bool = False) -> None:
        super().__init__(message)
        self.json_protocol = json_protocol
        if json_protocol:
            self.status = 400


class MissingAuthenticationTokenException(AuthError):
    status, code = 403, "MissingAuthenticationTokenException"


class IncompleteSignatureException(AuthError):
    status, code = 400, "IncompleteSignatureException"


class UnrecognizedClientException(AuthError):
    status, code = 403, "UnrecognizedClientException"


class InvalidSignatureException(AuthError):
    status, code = 403, "InvalidSignatureException"


class AccessDeniedException(AuthError):
    """An authenticated caller that may not act on a resource (e.g. another account's function)."""

    status, code = 403, "AccessDeniedException"


MISSING_TOKEN_LAMBDA = "Missing Authentication Token"
MISSING_TOKEN_JSON = "Request is missing Authentication Token"
INVALID_TOKEN = "The security token included in the request is invalid."
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)


def error_response(exc: AuthError, rid: str) -> Response:
    """The AWS envelope of an authentication error, in the protocol of the API that was called."""
    if not exc.json_protocol:
        return _lambda_error_response(exc, rid)
    return Response(
        json.dumps({"__type": exc.code, "message": exc.message}),
        exc.status,
        media_type=LOGS_CONTENT_TYPE,
        headers={"x-amzn-RequestId": rid, "x-amzn-ErrorType": exc.code},
    )


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The whole body (at most ``limit`` bytes), kept on the request, so that readers after authentication
    (``Call.body``, the logs API, which read ``request.stream()``) get it again from Starlette's cache."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestEntityTooLargeException(f"Request must be smaller than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestEntityTooLargeException(f"Request must be smaller than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body
    return body


# ---- parsing -----------------------------------------------------------------------------------------

_PLAIN_PATH_RE = re.compile(rb"[A-Za-z0-9\-._~/%]*")  # what quote(safe="/~") keeps, and "%"
_AMZ_DATE_RE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")


def _amz_date(epoch: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


@dataclass(frozen=True)
class _Claim:
    """What a request says about its signature, before any secret is involved."""

    key_id: str
    scope_date: str
    region: str
    service: str
    terminator: str
    signed_headers: str
    signature: str
    amz_date: str  # as it goes into the string to sign: YYYYMMDDTHHMMSSZ
    epoch: float
    presigned: bool
    expires: int | None  # X-Amz-Expires of a presigned URL


@dataclass(frozen=True)
class _Verified:
    """A claim whose key exists, date is current and scope is right: only the signature is left."""

    claim: _Claim
    secret: str
    account_id: str


class _Wire:
    """The parts of an HTTP request that SigV4 signs, as received."""

    __slots__ = ("headers", "method", "query", "raw_path")

    def __init__(
        self, method: str, raw_path: bytes, query: bytes, raw_headers: Iterable[tuple[bytes, bytes]]
    ) -> None:
        self.method = method
        self.raw_path = raw_path
        self.query = query
        headers: dict[str, str] = {}
        for name_b, value_b in raw_headers:
            name = name_b.decode("latin-1").lower()
            value = value_b.decode("latin-1")
            if name in headers:  # repeated header: values joined by commas, each trimmed (SigV4)
                headers[name] = _trim(headers[name]) + "," + _trim(value)
            else:
                headers[name] = value
        self.headers = headers

    @classmethod
    def of(cls, request: Request) -> _Wire:
        scope = request.scope
        raw_path = scope.get("raw_path")
        if not raw_path:
            raw_path = quote_from_bytes(scope.get("path", "/").encode("utf-8"), safe="/~").encode("ascii")
        return cls(scope["method"], raw_path, scope.get("query_string", b""), scope.get("headers", ()))


def _trim(value: str) -> str:
    return " ".join(value.split())


def _has_param(query: bytes, name: bytes) -> bool:
    return query.startswith(name + b"=") or (b"&" + name + b"=") in query


def _query_pairs(query: bytes) -> list[tuple[bytes, bytes]]:
    pairs = []
    for piece in query.split(b"&"):
        if piece:
            key, _, value = piece.partition(b"=")
            pairs.append((unquote_to_bytes(key), unquote_to_bytes(value)))
    return pairs


def _encode(raw: bytes) -> str:
    return quote_from_bytes(raw, safe="-_.~")


def canonical_query(query: bytes, *, drop_signature: bool = False) -> str:
    """Parameters decoded, then URI-encoded (RFC 3986 unreserved kept) and sorted by name, then value."""
    if not query:
        return ""
    encoded = [
        (_encode(k), _encode(v))
        for k, v in _query_pairs(query)
        if not (drop_signature and k == b"X-Amz-Signature")
    ]
    encoded.sort()
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_uri(raw_path: bytes) -> str:
    """The path as sent, normalised like botocore (dot segments and repeated slashes removed) and
    percent-encoded once more, as SigV4 requires for every service but S3."""
    path = raw_path or b"/"
    if b"//" in path or b"/." in path or not path.startswith(b"/"):
        path = _remove_dot_segments(path)
    if _PLAIN_PATH_RE.fullmatch(path):  # the usual case, ~20x faster than quote_from_bytes
        return path.decode("ascii").replace("%", "%25")
    return quote_from_bytes(path, safe="/~")


def _remove_dot_segments(path: bytes) -> bytes:
    out: list[bytes] = []
    for seg in path.split(b"/"):
        if not seg or seg == b".":
            continue
        if seg == b"..":
            if out:
                out.pop()
        else:
            out.append(seg)
    lead = b"/" if path.startswith(b"/") else b""
    trail = b"/" if path.endswith(b"/") and out else b""
    return (lead + b"/".join(out) + trail) or b"/"


# ---- the authenticator -------------------------------------------------------------------------------


class Authenticator:
    """Verifies AWS SigV4 on each request. ``credentials=None`` is embedded dev mode: anything goes, as
    ``default_account_id``."""

    def __init__(
        self,
        credentials: CredentialStore | None = None,
        *,
        default_account_id: str = "123456789012",
        clock: Clock | None = None,
        max_skew: float = MAX_SKEW,
    ) -> None:
        self.credentials = credentials
        self.default_account_id = default_account_id
        self.clock: Clock = clock or SystemClock()
        self.max_skew = max_skew
        self._keys: dict[tuple[str, str, str, str], bytes] = {}

    @property
    def enabled(self) -> bool:
        return self.credentials is not None

    def describe(self) -> str:
        """For the start-up log line."""
        if self.credentials is None:
            return "auth: off — any credentials are accepted"
        n, a = len(self.credentials), len(self.credentials.accounts)
        return f"auth: SigV4, {n} access key{'s' if n != 1 else ''} for {a} account{'s' if a != 1 else ''}"

    async def authenticate(self, request: Request, body: bytes) -> str:
        """The account id the request acts for; raises an :class:`AuthError` otherwise."""
        if self.credentials is None:
            return self.default_account_id
        wire = _Wire.of(request)
        verified = self._check_claim(wire)
        if wire.headers.get("x-amz-content-sha256") == UNSIGNED_PAYLOAD:
            body_hash = UNSIGNED_PAYLOAD  # the client chose not to sign the body
        elif len(body) > HASH_IN_THREAD_ABOVE:
            body_hash = (await asyncio.to_thread(hashlib.sha256, body)).hexdigest()
        else:
            body_hash = hashlib.sha256(body).hexdigest()
        self._check_signature(wire, verified, body_hash)
        return verified.account_id

    def verify(
        self,
        method: str,
        raw_path: bytes,
        query: bytes,
        headers: Iterable[tuple[bytes, bytes]],
        body: bytes = b"",
    ) -> str:
        """Synchronous :meth:`authenticate` over the raw parts of a request (ASGI-style headers)."""
        if self.credentials is None:
            return self.default_account_id
        wire = _Wire(method, raw_path, query, headers)
        verified = self._check_claim(wire)
        self._check_signature(wire, verified, hashlib.sha256(body).hexdigest())
        return verified.account_id

    # -- step 1: everything but the signature itself

    def _check_claim(self, wire: _Wire) -> _Verified:
        target = wire.headers.get("x-amz-target", "")
        json_protocol = target.startswith(LOGS_TARGET_PREFIX)
        service = "logs" if json_protocol else "lambda"
        claim = self._parse(wire, json_protocol)

        def invalid(message: str) -> InvalidSignatureException:
            return InvalidSignatureException(message, json_protocol=json_protocol)

        if claim.scope_date != claim.amz_date[:8]:
            raise invalid(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{claim.scope_date}' != '{claim.amz_date[:8]}', from '{claim.amz_date}'."
            )
        if not claim.region:
            raise invalid("Credential should be scoped to a valid region. ")
        if claim.service != service:
            raise invalid(f"Credential should be scoped to correct service: '{service}'. ")
        if claim.terminator != TERMINATOR:
            raise invalid(
                f"Credential should be scoped with a valid terminator: '{TERMINATOR}', "
                f"not '{claim.terminator}'. "
            )
        if not any(h in ("host", ":authority") for h in claim.signed_headers.split(";")):
            raise invalid("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
        assert self.credentials is not None
        cred = self.credentials.lookup(claim.key_id)
        token = wire.headers.get("x-amz-security-token") or (
            claim.presigned and _has_param(wire.query, b"X-Amz-Security-Token")
        )
        if cred is None or token:
            raise UnrecognizedClientException(INVALID_TOKEN, json_protocol=json_protocol)
        now = self.clock.time()
        if claim.epoch < now - self.max_skew:
            raise invalid(
                f"Signature expired: {claim.amz_date} is now earlier than {_amz_date(now - self.max_skew)} "
                f"({_amz_date(now)} - {self.max_skew / 60:g} min.)"
            )
        if claim.epoch > now + self.max_skew:
            raise invalid(
                f"Signature not yet current: {claim.amz_date} is still later than "
                f"{_amz_date(now + self.max_skew)} ({_amz_date(now)} + {self.max_skew / 60:g} min.)"
            )
        if claim.expires is not None and now > claim.epoch + claim.expires:
            raise invalid(
                f"Signature expired: {claim.amz_date} is now earlier than {_amz_date(now - claim.expires)} "
                f"({_amz_date(now)} - {claim.expires} sec.)"
            )
        return _Verified(claim, cred.secret_access_key, cred.account_id)

    def _parse(self, wire: _Wire, json_protocol: bool) -> _Claim:
        header = wire.headers.get("authorization")
        if header is not None and not header.strip():
            header = None
        presigned = _has_param(wire.query, b"X-Amz-Algorithm")
        if presigned and header is not None:
            raise InvalidSignatureException(
                "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.",
                json_protocol=json_protocol,
            )
        if presigned:
            return self._parse_query(wire, json_protocol)
        if header is None:
            raise MissingAuthenticationTokenException(
                MISSING_TOKEN_JSON if json_protocol else MISSING_TOKEN_LAMBDA, json_protocol=json_protocol
            )
        return self._parse_header(wire, header, json_protocol)

    def _parse_header(self, wire: _Wire, header: str, json_protocol: bool) -> _Claim:
        def incomplete(message: str) -> IncompleteSignatureException:
            return IncompleteSignatureException(message, json_protocol=json_protocol)

        algorithm, _, rest = header.strip().partition(" ")
        if algorithm.startswith("AWS4-") and algorithm != ALGORITHM:
            raise incomplete(f"Unsupported AWS 'algorithm': '{algorithm}'")
        parts: dict[str, str] = {}
        if algorithm == ALGORITHM:
            for piece in rest.split(","):
                piece = piece.strip()
                if not piece:
                    continue
                name, eq, value = piece.partition("=")
                if not eq:
                    raise incomplete(
                        f"'{piece}' not a valid key=value pair (missing equal-sign) in Authorization "
                        f"header: '{header}'."
                    )
                parts[name.strip()] = value.strip()
        date_value = wire.headers.get("x-amz-date") or wire.headers.get("date")
        missing = [
            f"Authorization header requires '{name}' parameter."
            for name in ("Credential", "Signature", "SignedHeaders")
            if not parts.get(name)
        ]
        if date_value is None:
            missing.append(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
            )
        if missing:
            raise incomplete(" ".join([*missing, f"Authorization={header}"]))
        assert date_value is not None
        iso = bool(wire.headers.get("x-amz-date"))
        amz_date, epoch = self._date(date_value, iso, json_protocol)
        credential, signed, signature = parts["Credential"], parts["SignedHeaders"], parts["Signature"]
        return self._claim(credential, signed, signature, amz_date, epoch, None, json_protocol)

    def _parse_query(self, wire: _Wire, json_protocol: bool) -> _Claim:
        params: dict[str, str] = {}
        for k, v in _query_pairs(wire.query):
            params.setdefault(k.decode("utf-8", "replace"), v.decode("utf-8", "replace"))
        missing = [
            f"AWS query-string parameters must include '{name}'. "
            for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders")
            if not params.get(name)
        ]
        if "X-Amz-Date" not in params:
            missing.append("AWS query-string parameters must include 'X-Amz-Date'. ")
        if missing:
            raise IncompleteSignatureException(
                "".join(missing) + "Re-examine the query-string parameters.", json_protocol=json_protocol
            )
        if params["X-Amz-Algorithm"] != ALGORITHM:
            raise IncompleteSignatureException(
                f"Unsupported AWS 'algorithm': '{params['X-Amz-Algorithm']}'", json_protocol=json_protocol
            )
        expires: int | None = None
        if "X-Amz-Expires" in params:
            raw = params["X-Amz-Expires"]
            if not raw.isdigit() or not 1 <= int(raw) <= MAX_PRESIGN_EXPIRES:
                raise IncompleteSignatureException(
                    f"X-Amz-Expires must be a number of seconds between 1 and {MAX_PRESIGN_EXPIRES}, "
                    f"got '{raw}'.",
                    json_protocol=json_protocol,
                )
            expires = int(raw)
        amz_date, epoch = self._date(params["X-Amz-Date"], True, json_protocol)
        claim = self._claim(
            params["X-Amz-Credential"],
            params["X-Amz-SignedHeaders"],
            params["X-Amz-Signature"],
            amz_date,
            epoch,
            expires,
            json_protocol,
        )
        return claim

    @staticmethod
    def _date(value: str, iso: bool, json_protocol: bool) -> tuple[str, float]:
        """(YYYYMMDDTHHMMSSZ, epoch seconds) of an X-Amz-Date (ISO 8601 basic) or Date (RFC 7231) value."""
        if iso:
            m = _AMZ_DATE_RE.fullmatch(value.strip())
            if m is not None:
                y, mo, d, h, mi, s = (int(g) for g in m.groups())
                if 1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 61:
                    return m.group(0), float(calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)))
        else:
            try:
                epoch = parsedate_to_datetime(value).timestamp()
                return _amz_date(epoch), float(int(epoch))
            except (TypeError, ValueError, IndexError, OverflowError):
                pass
        raise IncompleteSignatureException(
            f"Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601",
            json_protocol=json_protocol,
        )

    @staticmethod
    def _claim(
        credential: str,
        signed_headers: str,
        signature: str,
        amz_date: str,
        epoch: float,
        expires: int | None,
        json_protocol: bool,
    ) -> _Claim:
        scope = credential.split("/")
        if len(scope) != 5:
            raise IncompleteSignatureException(
                "Credential must have exactly 5 slash-delimited elements, "
                f"e.g. keyid/date/region/service/term, got '{credential}'",
                json_protocol=json_protocol,
            )
        key_id, scope_date, region, service, terminator = scope
        return _Claim(
            key_id,
            scope_date,
            region,
            service,
            terminator,
            signed_headers,
            signature,
            amz_date,
            epoch,
            expires is not None,
            expires,
        )

    # -- step 2: the signature

    def _check_signature(self, wire: _Wire, verified: _Verified, body_hash: str) -> None:
        claim = verified.claim
        key = self._signing_key(verified.secret, claim.scope_date, claim.region, claim.service)
        declared = wire.headers.get("x-amz-content-sha256")
        json_protocol = claim.service == "logs"
        if declared is not None and declared != UNSIGNED_PAYLOAD:  # declared: must be the body's
            if declared.lower() != body_hash:
                raise InvalidSignatureException(
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                    json_protocol=json_protocol,
                )
            candidates = [declared]
        elif declared == UNSIGNED_PAYLOAD:
            candidates = [UNSIGNED_PAYLOAD]
        elif claim.presigned:  # botocore hashes the (empty) body; S3-style presigners sign UNSIGNED-PAYLOAD
            candidates = [body_hash, UNSIGNED_PAYLOAD]
        else:
            candidates = [body_hash]
        given = claim.signature.encode("utf-8", "replace")
        prefix = self._canonical_prefix(wire, claim)
        scope = f"{claim.scope_date}/{claim.region}/{claim.service}/{TERMINATOR}"
        for payload_hash in candidates:
            canonical = prefix + payload_hash
            string_to_sign = "\n".join(
                (ALGORITHM, claim.amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest())
            )
            expected = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected.encode("ascii"), given):
                return
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "signature mismatch for access key %s; canonical request was:\n%s\nstring to sign:\n%s",
                claim.key_id,
                canonical,
                string_to_sign,
            )
        raise InvalidSignatureException(SIGNATURE_MISMATCH, json_protocol=json_protocol)

    def _canonical_prefix(self, wire: _Wire, claim: _Claim) -> str:
        """The canonical request up to (not including) the payload hash."""
        headers = wire.headers
        lines = [
            wire.method.upper(),
            canonical_uri(wire.raw_path),
            canonical_query(wire.query, drop_signature=claim.presigned),
        ]
        names = claim.signed_headers.split(";")
        for name in names:
            lines.append(f"{name}:{_trim(headers.get(name, ''))}")
        lines.append("")
        lines.append(claim.signed_headers)
        lines.append("")
        return "\n".join(lines)

    def _signing_key(self, secret: str, date: str, region: str, service: str) -> bytes:
        cache_key = (secret, date, region, service)
        key = self._keys.get(cache_key)
        if key is None:
            key = ("AWS4" + secret).encode("utf-8")
            for part in (date, region, service, TERMINATOR):
                key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
            if len(self._keys) >= _KEY_CACHE_MAX:
                self._keys.clear()
            self._keys[cache_key] = key
        return key

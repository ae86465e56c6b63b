"""Shoal's Python language bootstrap: a Lambda Runtime API (2018-06-01) client.

Started by the platform as ``<python3.X> -I -S bootstrap.py`` inside the sandbox, with the working directory
set to the function's code and the reserved environment variables of a Lambda execution environment.  It
behaves like AWS's Python runtime interface client (``awslambdaric``): same handler resolution, error shapes,
context object, log format and stdout handling.

It imports nothing from ``shoal`` and is on the cold-start path, so it keeps its own start-up lean:
- HTTP/1.1 is spoken by hand over one keep-alive ``_socket`` (no ``http.client``/``socket``/``enum``);
- JSON goes through the ``_json`` C accelerator directly (``json`` pulls in ``re``; it is imported only to
  word the error for a document that does not parse);
- ``traceback`` is imported on the first error; ``logging`` is configured the moment user code imports it
  (an import hook), never eagerly.

Compiling this script is most of what it costs to start (~6 ms on a 2-core box); Python also runs a
precompiled ``.pyc`` of it directly (``python -I -S bootstrap.cpython-311.pyc``), which the platform may do.

Log framing: on AWS every ``logging`` record or unhandled-error report is one log event.  The platform splits
the output pipe into events on ``\\n`` only, so a multi-line record is written as one line whose inner
newlines are replaced with ``\\r``.  ``print()`` output is raw.
"""

import _json
import _socket
import os
import sys
import time

# ------------------------------------------------------------------------------------------------
# Error types and literals (awslambdaric lambda_runtime_exception.py / lambda_literals.py)

MARSHAL_ERROR = "Runtime.MarshalError"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

UNHANDLED_EXCEPTION_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code. "
    "However, in rare cases, a Lambda runtime update can cause unexpected function behavior. "
    "For functions using managed runtimes, runtime updates can be triggered by a function change, "
    "or can be applied automatically. To determine if the runtime has been updated, check the runtime "
    "version in the INIT_START log entry. If this error correlates with a change in the runtime version, "
    "you may be able to mitigate this error by temporarily rolling back to the previous runtime version. "
    "For more information, see https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html"
)

API_PREFIX = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
XRAY_ERROR_CAUSE_HEADER = "Lambda-Runtime-Function-XRay-Error-Cause"
# awslambdaric drops the X-Ray cause header at 1 MiB; stay well below what HTTP servers accept in a header.
XRAY_ERROR_CAUSE_MAX = 32 * 1024
ERROR_LOG_IDENT = "\u00a0"  # awslambdaric indents traceback lines in logs with NO-BREAK SPACE
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
TEXT_LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"
LOG_LEVELS = {"CRITICAL": 50, "FATAL": 50, "ERROR": 40, "WARN": 30, "WARNING": 30, "INFO": 20, "DEBUG": 10}
JSON_RESERVED_FIELDS = frozenset(
    (
        "name msg args levelname levelno pathname filename module exc_info exc_text stack_info lineno "
        "funcName created msecs relativeCreated thread threadName processName process aws_request_id "
        "tenant_id _frame_type"
    ).split()
)


class FaultException(Exception):
    """A runtime-detected fault, reported with its own error type (never a user exception)."""

    def __init__(self, exception_type, msg, trace=None):
        super().__init__(msg)
        self.exception_type = exception_type
        self.msg = msg
        self.trace = trace


# ------------------------------------------------------------------------------------------------
# Process-wide state

# read from the environment by _read_config() when main() starts
_LOG_JSON = False  # AWS_LAMBDA_LOG_FORMAT=JSON
_LOG_LEVEL = ""  # AWS_LAMBDA_LOG_LEVEL, as awslambdaric normalises it
_ENSURE_ASCII = True  # awslambdaric quirk: its encoder emits raw UTF-8 only on AWS_Lambda_python3.12

_request_id = None  # current invocation, read by the logging filter
_tenant_id = None
_log_fd = -1  # private duplicate of fd 1: logs survive a handler that replaces sys.stdout or closes fd 1


def _high_fd(fd):
    """Move ``fd`` above 2: a handler that closed stdout must not get our socket as its fd 1."""
    if fd > 2:
        return fd
    import fcntl

    new_fd = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return new_fd


def _write_fd(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _log_write(text):
    """Write one log event (no newline inside it) to the real stdout."""
    global _log_fd
    data = text.encode("utf-8", "backslashreplace")
    if _log_fd >= 0:
        try:
            _write_fd(_log_fd, data)
            return
        except OSError:
            _log_fd = -1
    try:
        stream = sys.__stdout__
        stream.write(text)
        stream.flush()
    except Exception:
        pass


def _log_event(message):
    """One log event: inner newlines become ``\\r`` so that the record stays one line in the output pipe."""
    if message.endswith("\n"):
        message = message[:-1]
    _log_write(message.replace("\n", "\r") + "\n")


def _flush_std_streams():
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass


class Unbuffered:
    """sys.stdout/sys.stderr wrapper flushing after every write, like awslambdaric's."""

    def __init__(self, stream):
        self.stream = stream

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, exc_tb):
        pass

    def __getattr__(self, attr):
        return getattr(self.stream, attr)

    def write(self, msg):
        result = self.stream.write(msg)
        self.stream.flush()
        return result

    def writelines(self, msgs):
        self.stream.writelines(msgs)
        self.stream.flush()


class _Quitter:
    """``exit``/``quit`` builtins, which ``-S`` (no ``site``) leaves undefined."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"Use {self.name}() or Ctrl-D (i.e. EOF) to exit"

    def __call__(self, code=None):
        try:
            sys.stdin.close()
        except Exception:
            pass
        raise SystemExit(code)


# ------------------------------------------------------------------------------------------------
# JSON through the _json accelerator (output identical to json.dumps / json.loads defaults)


class _DecodeContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


_scan_once = _json.make_scanner(_DecodeContext)
_WHITESPACE = " \t\n\r"


def json_loads(data):
    """``json.loads`` for bytes or str; on any doubt the real ``json`` module decides (and words errors)."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        if text[:1] == "\ufeff":
            raise ValueError("BOM")
        start, end = 0, len(text)
        while start < end and text[start] in _WHITESPACE:
            start += 1
        while end > start and text[end - 1] in _WHITESPACE:
            end -= 1
        value, stop = _scan_once(text, start)
        if stop == end:
            return value
    except Exception:
        pass
    import json

    return json.loads(data)


_raw_nonce = None


def to_json(obj):
    """awslambdaric's ``to_json``: the encoder used for responses and error reports."""
    return json_dumps(obj, ensure_ascii=_ENSURE_ASCII, decimals=True)


def json_dumps(obj, ensure_ascii=True, decimals=False):
    """``json.dumps(obj)`` with default separators; ``decimals`` encodes ``Decimal`` as a bare number, as the
    RIC's simplejson-based marshaller does."""
    global _raw_nonce
    raws = []

    def default(o):
        if decimals:
            decimal = sys.modules.get("decimal")
            if decimal is not None and isinstance(o, decimal.Decimal):
                if o.is_nan():
                    return float("nan")
                raws.append(str(o))
                return f"\x00{_raw_nonce}:{len(raws) - 1}\x00"
        raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")

    if decimals and _raw_nonce is None:
        _raw_nonce = os.urandom(8).hex()
    quote = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
    encoder = _json.make_encoder({}, default, quote, None, ": ", ", ", False, False, True)
    text = "".join(encoder(obj, 0))
    for index, raw in enumerate(raws):
        text = text.replace(quote(f"\x00{_raw_nonce}:{index}\x00"), raw, 1)
    return text


# ------------------------------------------------------------------------------------------------
# Runtime API client: HTTP/1.1 over one persistent connection


class RuntimeAPIError(Exception):
    pass


class RuntimeClient:
    def __init__(self, address):
        self.address = address
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            host, port = address, "80"
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        self.host = host
        self.port = int(port)
        self.sock = None
        self.buf = bytearray()
        self.reused = False
        self.got_bytes = False
        self.user_agent = "aws-lambda-python/{}.{}.{}-shoal".format(*sys.version_info[:3])

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = bytearray()

    def _connect(self):
        error = None
        # bytes: a str host would make _socket import the idna codec (and with it re, enum, ...)
        host = self.host.encode("ascii", "ignore") if self.host.isascii() else self.host
        for family, kind, proto, _, addr in _socket.getaddrinfo(host, self.port, 0, _socket.SOCK_STREAM):
            sock = _socket.socket(family, kind, proto)
            try:
                sock.connect(addr)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            if family in (_socket.AF_INET, _socket.AF_INET6):
                sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            if sock.fileno() <= 2:
                sock = _socket.socket(family, kind, proto, _high_fd(sock.detach()))
            self.sock = sock
            self.buf = bytearray()
            self.reused = False
            return
        raise error or OSError(f"cannot resolve {self.address}")

    def _peer_closed(self):
        """True when the server closed the idle keep-alive connection (or sent something unexpected)."""
        try:
            self.sock.recv(1, _socket.MSG_PEEK | _socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            pass
        return True

    def request(self, method, path, body=None, headers=()):
        """Send one request and return ``(status, headers, body)``; header names are lower-cased."""
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.address}", f"User-Agent: {self.user_agent}"]
        if body is not None:
            head.append(f"Content-Length: {len(body)}")
        for name, value in headers:
            head.append(f"{name}: {value.replace(chr(13), ' ').replace(chr(10), ' ')}")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("utf-8", "replace")
        if body and len(body) <= 65536:
            data, body = data + body, None
        for attempt in (1, 2):
            if self.sock is not None and self.reused and self._peer_closed():
                self.close()
            if self.sock is None:
                self._connect()
            reused = self.reused
            self.got_bytes = False
            try:
                self.sock.sendall(data)
                if body:
                    self.sock.sendall(body)
                response = self._read_response()
            except OSError:
                self.close()
                # a keep-alive connection may die under us; retry once if the server never answered
                if attempt == 1 and reused and not self.got_bytes:
                    continue
                raise
            self.reused = True
            return response
        raise AssertionError("unreachable")

    def _recv_more(self):
        chunk = self.sock.recv(65536)  # larger sizes make the C layer map and unmap a buffer per call
        if not chunk:
            raise ConnectionResetError("Runtime API closed the connection")
        self.got_bytes = True
        self.buf += chunk

    def _read_exact(self, size):
        while len(self.buf) < size:
            self._recv_more()
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data

    def _read_line(self):
        while True:
            index = self.buf.find(b"\r\n")
            if index >= 0:
                line = bytes(self.buf[:index])
                del self.buf[: index + 2]
                return line
            self._recv_more()

    def _read_response(self):
        while True:
            while True:
                index = self.buf.find(b"\r\n\r\n")
                if index >= 0:
                    break
                self._recv_more()
            head = bytes(self.buf[:index]).decode("latin-1")
            del self.buf[: index + 4]
            lines = head.split("\r\n")
            parts = lines[0].split(None, 2)
            if len(parts) < 2 or not parts[1].isdigit():
                raise ConnectionResetError(f"malformed response from Runtime API: {lines[0]!r}")
            status = int(parts[1])
            if 100 <= status < 200:
                continue  # interim response
            break
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        keep_alive = parts[0] != "HTTP/1.0"
        connection = headers.get("connection", "").lower()
        if "close" in connection:
            keep_alive = False
        elif "keep-alive" in connection:
            keep_alive = True
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size = int(self._read_line().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self._read_line():  # trailers
                        pass
                    break
                chunks.append(self._read_exact(size))
                self._read_exact(2)
            body = b"".join(chunks)
        elif "content-length" in headers:
            body = self._read_exact(int(headers["content-length"]))
        elif status in (204, 304):
            body = b""
        else:
            while True:  # body delimited by the end of the connection
                try:
                    self._recv_more()
                except ConnectionResetError:
                    break
            body, keep_alive = bytes(self.buf), False
        if not keep_alive:
            self.close()
        return status, headers, body

    # --- the Runtime API endpoints ---

    def next_invocation(self):
        status, headers, body = self.request("GET", API_PREFIX + "/invocation/next")
        if status != 200:
            raise RuntimeAPIError(
                f"Request to Lambda Runtime 'next' endpoint failed. Reason: '{status}'. "
                f"Response body: '{body!r}'"
            )
        return headers, body

    def _post(self, path, body, headers):
        _flush_std_streams()  # the platform drains the output pipe when it receives the POST
        status, _, response = self.request("POST", API_PREFIX + path, body, headers)
        if status >= 500:
            raise RuntimeAPIError(f"Runtime API {path} answered {status}: {response!r}")
        if not 200 <= status < 300:
            _stderr_line(f"Runtime API {path} answered {status}: {response[:512]!r}")

    def post_invocation_result(self, request_id, payload, content_type):
        self._post(f"/invocation/{request_id}/response", payload, [("Content-Type", content_type)])

    def post_invocation_error(self, request_id, error_json, xray_fault_json):
        headers = [("Content-Type", "application/json")]
        if xray_fault_json and len(xray_fault_json) < XRAY_ERROR_CAUSE_MAX:
            headers.append((XRAY_ERROR_CAUSE_HEADER, xray_fault_json))
        self._post(f"/invocation/{request_id}/error", error_json.encode("utf-8"), headers)

    def post_init_error(self, error_result):
        headers = [("Content-Type", "application/json"), (ERROR_TYPE_HEADER, error_result["errorType"])]
        self._post("/init/error", to_json(error_result).encode("utf-8"), headers)

    def restore_next(self):
        """SnapStart: wait to be restored. Answers ``(headers, body)``; a ``shoal-fork`` header asks for a
        copy to be forked instead (see ``_snapshot``)."""
        status, headers, body = self.request("GET", API_PREFIX + "/restore/next")
        if status != 200:
            raise RuntimeAPIError(f"Request to Lambda Runtime 'restore/next' failed. Reason: '{status}'.")
        return headers, body

    def post_restore_error(self, error_result):
        headers = [("Content-Type", "application/json"), (ERROR_TYPE_HEADER, error_result["errorType"])]
        self._post("/restore/error", to_json(error_result).encode("utf-8"), headers)


def _stderr_line(message):
    try:
        _write_fd(2, (message.replace("\n", "\r") + "\n").encode("utf-8", "backslashreplace"))
    except OSError:
        pass


# ------------------------------------------------------------------------------------------------
# Context object (awslambdaric lambda_context.py)

W3C_ALLOWED_FIELDS = ("traceparent", "tracestate", "baggage")


class LambdaContext:
    def __init__(
        self,
        invoke_id,
        client_context,
        cognito_identity,
        epoch_deadline_time_in_ms,
        invoked_function_arn=None,
        tenant_id=None,
    ):
        environ = os.environ
        self.aws_request_id = invoke_id
        self.log_group_name = environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self._w3c_fields = self._extract_and_strip_w3c(client_context)

        self.client_context = make_obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = make_obj_from_dict(Client, self.client_context.client)

        self.identity = make_obj_from_dict(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")

        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self):
        delta_ms = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta_ms if delta_ms > 0 else 0

    def w3c(self):
        """The W3C trace-context fields the caller passed in ``clientContext.w3c``."""
        return dict(self._w3c_fields)

    @staticmethod
    def _extract_and_strip_w3c(client_context):
        if not isinstance(client_context, dict) or "w3c" not in client_context:
            return {}
        raw = client_context.pop("w3c")
        if not isinstance(raw, dict):
            return {}
        return {key: raw[key] for key in W3C_ALLOWED_FIELDS if isinstance(raw.get(key), str)}

    def log(self, msg):
        _log_event(str(msg))

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(["
            f"aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},"
            f"identity={self.identity},"
            f"tenant_id={self.tenant_id}"
            "])"
        )


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(["
            f"cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}"
            "])"
        )


class Client:
    __slots__ = ["app_package_name", "app_title", "app_version_code", "app_version_name", "installation_id"]

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(["
            f"installation_id={self.installation_id},"
            f"app_title={self.app_title},"
            f"app_version_name={self.app_version_name},"
            f"app_version_code={self.app_version_code},"
            f"app_package_name={self.app_package_name}"
            "])"
        )


class ClientContext:
    __slots__ = ["client", "custom", "env"]

    def __repr__(self):
        return f"{self.__class__.__name__}([custom={self.custom},env={self.env},client={self.client}])"


def make_obj_from_dict(cls, values):
    if values is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, values.get(field, None))
    return obj


# ------------------------------------------------------------------------------------------------
# Error reporting (awslambdaric bootstrap.py)


def make_error(error_message, error_type, stack_trace, invoke_id=None):
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": invoke_id if invoke_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def _safe_str(value):
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__} object>"


def _user_frames(tb):
    """Traceback entries as (file, line, function, source) tuples, leading bootstrap frames dropped."""
    import traceback

    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    for index, frame in enumerate(frames):
        if "/bootstrap.py" not in frame[0]:
            return frames[index:]
    return frames


def _format_frames(frames):
    import traceback

    return traceback.format_list(frames)


def make_xray_fault(ex_type, ex_msg, working_dir, frames):
    stack = [{"label": name, "path": path, "line": line} for path, line, name, _ in frames]
    return {
        "working_directory": working_dir,
        "exceptions": [{"message": ex_msg, "type": ex_type, "stack": stack}],
        "paths": list({frame[0]: None for frame in frames}),
    }


def _getcwd():
    try:
        return os.getcwd()
    except OSError:
        return ""


def build_fault_result(exc_info, invoke_id=None):
    etype, value, tb = exc_info
    frames = _user_frames(tb)
    return make_error(_safe_str(value), etype.__name__, _format_frames(frames), invoke_id), frames


def _indent_nbsp(line):
    stripped = line.lstrip(" ")
    return ERROR_LOG_IDENT * (len(line) - len(stripped)) + stripped


def log_error(error_result):
    """Log an unhandled error the way awslambdaric does (one log event)."""
    if _LOG_JSON:
        record = {
            "timestamp": time.strftime(DATETIME_FORMAT, time.gmtime()),
            "level": "ERROR",
            **error_result,
        }
        _log_event(to_json(record))
        return
    description = "[ERROR]"
    error_type = error_result.get("errorType")
    if error_type:
        description += " " + error_type
    error_message = error_result.get("errorMessage")
    if error_message:
        if error_type:
            description += ":"
        description += " " + error_message
    lines = [description]
    stack_trace = error_result.get("stackTrace")
    if stack_trace is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack_trace:
            if element == "":
                lines.append("")
            else:
                lines.extend(_indent_nbsp(line) for line in element.splitlines())
    _log_event("\r".join(lines))


def _format_timestamp_ms(created):
    seconds = int(created)
    micros = round((created - seconds) * 1e6)
    if micros >= 1000000:
        seconds, micros = seconds + 1, micros - 1000000
    return time.strftime(DATETIME_FORMAT, time.gmtime(seconds)) + f".{micros // 1000:03d}Z"


def log_warning(message):
    """``logging.warning(message)`` through the Lambda log handler, without importing ``logging`` for it."""
    logging = sys.modules.get("logging")
    if _logging_configured and logging is not None:
        logging.warning(message)
        return
    if LOG_LEVELS.get(_LOG_LEVEL, 30) > 30:
        return
    now = time.time()
    if _LOG_JSON:
        record = {
            "timestamp": _format_timestamp_ms(now),
            "level": "WARNING",
            "message": message,
            "logger": "root",
            "requestId": _request_id or "",
        }
        _log_event(json_dumps(record, ensure_ascii=False))
    else:
        stamp = time.strftime(DATETIME_FORMAT, time.gmtime(now)) + f".{int((now - int(now)) * 1000):03d}Z"
        _log_event(f"[WARNING]\t{stamp}\t{_request_id or ''}\t{message}")


# ------------------------------------------------------------------------------------------------
# logging integration: configured when user code first imports ``logging``

_logging_configured = False


def _configure_logging(logging):
    """Install the Lambda root handler (awslambdaric ``_setup_logging``)."""
    global _logging_configured
    if _logging_configured:
        return
    _logging_configured = True
    logging.Formatter.converter = time.gmtime
    root = logging.getLogger()

    class LambdaLoggerHandler(logging.Handler):
        def emit(self, record):
            _log_event(self.format(record))

    class LambdaLoggerFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = _request_id or ""
            record.tenant_id = _tenant_id
            return True

    handler = LambdaLoggerHandler()
    if _LOG_JSON:
        handler.setFormatter(_make_json_formatter(logging)())
    else:
        handler.setFormatter(logging.Formatter(TEXT_LOG_FORMAT, DATETIME_FORMAT))
    if _LOG_LEVEL in logging._nameToLevel:
        root.setLevel(_LOG_LEVEL)
    handler.addFilter(LambdaLoggerFilter())
    root.addHandler(handler)


def _make_json_formatter(logging):
    class JsonFormatter(logging.Formatter):
        """awslambdaric's JSON log format (``LoggingConfig.LogFormat = JSON``)."""

        def __init__(self):
            super().__init__(datefmt=DATETIME_FORMAT)

        def formatTime(self, record, datefmt=None):
            return _format_timestamp_ms(record.created)

        def format(self, record):
            record.levelno = min(50, max(0, record.levelno)) // 10 * 10
            record.levelname = logging.getLevelName(record.levelno)
            exc_info = record.exc_info
            if exc_info:
                import traceback

                stack_trace = traceback.format_tb(exc_info[2])
                error_type = exc_info[0].__name__
                error_message = str(exc_info[1])
                location = f"{record.pathname}:{record.funcName}:{record.lineno}"
            else:
                stack_trace = error_type = error_message = location = None
            result = {
                "timestamp": self.formatTime(record, self.datefmt),
                "level": record.levelname,
                "message": record.getMessage(),
                "logger": record.name,
                "stackTrace": stack_trace,
                "errorType": error_type,
                "errorMessage": error_message,
                "requestId": getattr(record, "aws_request_id", None),
                "location": location,
            }
            if getattr(record, "tenant_id", None) is not None:
                result["tenantId"] = record.tenant_id
            result.update(
                (key, value)
                for key, value in record.__dict__.items()
                if key not in JSON_RESERVED_FIELDS and key not in result
            )
            result = {key: value for key, value in result.items() if value is not None}
            return json_dumps(result, ensure_ascii=False) + "\n"

    return JsonFormatter


class _LoggingLoader:
    """Wraps the loader of the stdlib ``logging`` package to configure it right after it executes."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = self._loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        try:
            _configure_logging(module)
        except Exception:
            pass  # not the stdlib logging (a same-named module in the deployment package)


class LoggingImportHook:
    """``sys.meta_path`` finder that only watches for the first import of ``logging``."""

    def find_spec(self, name, path=None, target=None):
        if name != "logging":
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _LoggingLoader(spec.loader)
        return spec


# ------------------------------------------------------------------------------------------------
# Handler loading (awslambdaric ``_get_handler``)


def import_module(name):
    """``importlib.import_module(name)`` without importing ``importlib``."""
    if name.startswith("."):
        raise TypeError(f"the 'package' argument is required to perform a relative import for {name!r}")
    return sys.modules["_frozen_importlib"]._gcd_import(name)


def get_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(MALFORMED_HANDLER_NAME, f"Bad handler '{handler}': {e}") from None
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                BUILT_IN_MODULE_CONFLICT, f"Cannot use built-in module {modname} as a handler module"
            )
        module = import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(IMPORT_MODULE_ERROR, f"Unable to import module '{modname}': {e}") from None
    except SyntaxError as e:
        trace = [f'  File "{e.filename}" Line {e.lineno}\n    {e.text}']
        raise FaultException(
            USER_CODE_SYNTAX_ERROR, f"Syntax error in module '{modname}': {e}", trace
        ) from None
    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultException(HANDLER_NOT_FOUND, f"Handler '{fname}' missing on module '{modname}'") from None


# ------------------------------------------------------------------------------------------------
# The invocation loop


def _parse_json_header(value, name):
    try:
        return json_loads(value)
    except Exception as e:
        raise FaultException(LAMBDA_CONTEXT_UNMARSHAL_ERROR, f"Unable to parse {name} JSON: {e}") from None


def unmarshal_event(body, content_type):
    # awslambdaric hands a non-JSON payload to the handler as bytes; a missing Content-Type is treated as JSON
    if content_type and content_type.split(";")[0].strip().lower() != "application/json":
        return body
    try:
        return json_loads(body)
    except Exception as e:
        raise FaultException(UNMARSHAL_ERROR, f"Unable to unmarshal input: {e}") from None


def marshal_response(response):
    if isinstance(response, bytes):
        return response, "application/unknown"
    try:
        return to_json(response).encode("utf-8"), "application/json"
    except Exception as e:
        raise FaultException(MARSHAL_ERROR, f"Unable to marshal response: {e}") from None


def handle_event_request(client, request_handler, headers, body):
    global _request_id, _tenant_id
    invoke_id = headers.get("lambda-runtime-aws-request-id", "")
    _request_id = invoke_id
    _tenant_id = headers.get("lambda-runtime-aws-tenant-id") or None
    trace_id = headers.get("lambda-runtime-trace-id")
    if trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    elif "_X_AMZN_TRACE_ID" in os.environ:
        del os.environ["_X_AMZN_TRACE_ID"]

    error_result = None
    try:
        client_context = headers.get("lambda-runtime-client-context")
        cognito_identity = headers.get("lambda-runtime-cognito-identity")
        try:
            deadline_ms = int(headers.get("lambda-runtime-deadline-ms", "0"))
        except ValueError:
            deadline_ms = 0
        context = LambdaContext(
            invoke_id,
            _parse_json_header(client_context, "Client Context") if client_context else None,
            _parse_json_header(cognito_identity, "Cognito Identity") if cognito_identity else None,
            deadline_ms,
            headers.get("lambda-runtime-invoked-function-arn"),
            _tenant_id,
        )
        event = unmarshal_event(body, headers.get("content-type"))
        response = request_handler(event, context)
        result, content_type = marshal_response(response)
    except FaultException as e:
        xray_fault = make_xray_fault("LambdaValidationError", e.msg, _getcwd(), [])
        error_result = make_error(e.msg, e.exception_type, e.trace, invoke_id)
    except Exception:
        etype, value, tb = sys.exc_info()
        error_result, frames = build_fault_result((etype, value, tb), invoke_id)
        xray_fault = make_xray_fault(etype.__name__, error_result["errorMessage"], _getcwd(), frames)
        del tb

    if error_result is not None:
        log_error(error_result)
        client.post_invocation_error(invoke_id, to_json(error_result), to_json(xray_fault))
    else:
        client.post_invocation_result(invoke_id, result, content_type)


def _own_dirs():
    """The bootstrap's own directory, as given and resolved (``realpath`` stats every component)."""
    here = os.path.abspath(__file__)
    return {os.path.dirname(here), os.path.dirname(os.path.realpath(here))}


_OWN_DIRS = None  # computed once by a fork-server (preload), for every environment it forks


def _setup_sys_path(task_root):
    version = "python{}.{}".format(*sys.version_info[:2])
    own_dirs = _OWN_DIRS or _own_dirs()
    stdlib = [p for p in sys.path if p and os.path.abspath(p) not in own_dirs]
    paths = [task_root, f"/opt/python/lib/{version}/site-packages", "/opt/python"]
    paths += [p for p in stdlib if p not in paths]
    site_packages = os.path.join(sys.prefix, "lib", version, "site-packages")
    if site_packages not in paths:
        paths.append(site_packages)
    sys.path[:] = paths


def _setup_process():
    global _log_fd
    try:
        _log_fd = _high_fd(os.dup(1))
    except OSError:
        _log_fd = -1
    if sys.stdout is not None:
        sys.stdout = Unbuffered(sys.stdout)
    if sys.stderr is not None:
        sys.stderr = Unbuffered(sys.stderr)
    import builtins

    for name in ("exit", "quit"):
        if not hasattr(builtins, name):
            setattr(builtins, name, _Quitter(name))
    sys.meta_path.insert(0, LoggingImportHook())


def _read_config(environ):
    global _LOG_JSON, _LOG_LEVEL, _ENSURE_ASCII
    _LOG_JSON = (environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"
    level = environ.get("AWS_LAMBDA_LOG_LEVEL")
    _LOG_LEVEL = {None: "", "TRACE": "DEBUG"}.get(level, level or "").upper()
    _ENSURE_ASCII = environ.get("AWS_EXECUTION_ENV") != "AWS_Lambda_python3.12"


# ------------------------------------------------------------------------------------------------
# SnapStart (AWS_LAMBDA_INITIALIZATION_TYPE=snap-start): snapshot_restore_py's hooks, and Shoal's snapshots,
# which fork a copy per new environment


def _install_snapshot_restore_py():
    """``snapshot_restore_py`` as AWS's Python runtimes ship it (a function may also bundle the PyPI one)."""
    if "snapshot_restore_py" in sys.modules:
        return
    import types

    module = types.ModuleType("snapshot_restore_py")
    before, after = [], []

    def register_before_snapshot(func, *args, **kwargs):
        before.append((func, args, kwargs))
        return func

    def register_after_restore(func, *args, **kwargs):
        after.append((func, args, kwargs))
        return func

    module.register_before_snapshot = register_before_snapshot
    module.register_after_restore = register_after_restore
    module.get_before_snapshot = lambda: before
    module.get_after_restore = lambda: after
    sys.modules["snapshot_restore_py"] = module


def _run_hooks(kind):
    """Before snapshot: in reverse order of registration; after restore: in order."""
    module = sys.modules.get("snapshot_restore_py")
    hooks = list(getattr(module, f"get_{kind}", lambda: [])() or [])
    for func, args, kwargs in reversed(hooks) if kind == "before_snapshot" else hooks:
        func(*args, **kwargs)


def _hooks_or_exit(kind, report):
    """Run the ``kind`` hooks; on an exception log it, ``report`` it to the Runtime API and exit."""
    try:
        _run_hooks(kind)
    except Exception:
        error_result, _ = build_fault_result(sys.exc_info())
        log_error(error_result)
        report(error_result)
        _flush_std_streams()
        sys.exit(1)


def _snapshot(client):
    """Run the before-snapshot hooks, then wait on ``restore/next``. Shoal answers a snapshot with copies to
    fork: each is a new environment, which resumes here with the ``RuntimeClient`` of its own Runtime API.
    Returns the client the invocation loop uses, after the after-restore hooks have run."""
    _hooks_or_exit("before_snapshot", client.post_init_error)
    import ctypes  # noqa: F401  what a copy needs, imported once here rather than in every copy
    import random
    import signal
    import socket  # noqa: F401

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the copies' exits are the platform's to see
    while True:
        _flush_std_streams()
        headers, body = client.restore_next()
        if "shoal-fork" not in headers:
            break  # restored in place
        request = json_loads(body)
        if os.fork() == 0:
            client.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            client = _become_copy(request)
            break
    random.seed()  # each copy its own sequence
    _hooks_or_exit("after_restore", client.post_restore_error)
    return client


def _become_copy(request):
    """In a fresh fork: become an environment of its own (the platform's half: sandbox/forks.py), then wait
    for its variables: a copy may be made ahead of need."""
    global _log_fd
    import ctypes
    import socket

    os.setsid()
    channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    channel.connect("\0" + request["handshake"])
    _, fds, _, _ = socket.recv_fds(channel, 1, 1)
    for target in (1, 2, _log_fd):
        if target >= 0:
            os.dup2(fds[0], target, inheritable=target <= 2)
    os.close(fds[0])
    libc = ctypes.CDLL(None, use_errno=True)
    flags = 0x10000000 | 0x00020000 | 0x08000000 | 0x04000000  # CLONE_NEWUSER | NEWNS | NEWIPC | NEWUTS
    if libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), "unshare")
    tmp_options = f"size={int(request['tmp_mb'])}m,mode=1777".encode()
    # its own /tmp and /dev/shm (MS_NOSUID | MS_NODEV): nothing written there by the snapshot or a sibling
    for target, options in ((b"/tmp", tmp_options), (b"/dev/shm", b"size=64m,mode=1777")):
        if libc.mount(b"tmpfs", target, b"tmpfs", 0x2 | 0x4, options) != 0:
            raise OSError(ctypes.get_errno(), "mount " + target.decode())
    channel.sendall(b"U")
    if channel.recv(1) != b"M":
        raise OSError("the platform did not adopt this copy")
    uid = request["uid"]
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [(name, ctypes.c_uint32) for name in ("effective", "permitted", "inheritable")]

    if libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()) != 0:  # no capability left
        raise OSError(ctypes.get_errno(), "capset")
    keyctl = {"x86_64": 250, "aarch64": 219}.get(os.uname().machine)
    if keyctl is not None:  # a session keyring of its own, not one the snapshot's INIT may have joined
        libc.syscall(keyctl, 1, None)  # KEYCTL_JOIN_SESSION_KEYRING, anonymous
    # a spare until the platform needs a new environment: then its variables arrive, up to end-of-file
    chunks = []
    while True:
        chunk = channel.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    channel.close()
    if not chunks:
        os._exit(0)  # let go unused
    os.environ.clear()
    os.environ.update(json_loads(b"".join(chunks)))
    _read_config(os.environ)
    return RuntimeClient(os.environ.get("AWS_LAMBDA_RUNTIME_API") or "127.0.0.1:9001")


def preload():
    """Called once by a fork-server that imported this module to fork environments from (never inside an
    environment): make here what each forked environment would otherwise make for itself, so that it is
    shared with every child instead of costing each one. Nothing specific to a function or a process."""
    # The compiler's AST types are created on the first ``compile()`` of a process (~1.5 ms of CPU); every
    # environment compiles its handler's module (``/var/task`` is read-only: no ``__pycache__``).
    compile("", "<preload>", "exec")
    global _OWN_DIRS
    _OWN_DIRS = _own_dirs()
    try:
        _rehearse()
    except Exception as exc:  # only an optimisation: the fork-server serves without it
        _stderr_line(f"shoal: the Python fork-server's rehearsal failed, forking without it: {exc!r}")


def rehearse():
    """One rehearsal (:func:`_rehearse`): the fork-server learns from it which of its pages a child writes."""
    _rehearse(1)


def _rehearse(rounds=4):
    """Run here, a few times, what every environment runs for its first invocation: a handler module
    imported from a directory of its own, the ``next`` round trip and the response's ``POST`` (against a
    socket pair holding the platform's answers), the event handled. The interpreter specialises its bytecode
    and fills its caches as code runs; done here, that is written once in the fork-server's memory and
    shared, instead of copy-on-write faulting the same pages in every child. Leaves nothing behind: the
    module, its directory, the invocation's globals and variables are removed."""
    global _request_id, _tenant_id
    directory = f"/tmp/shoal-rehearsal-{os.getpid()}-{os.urandom(6).hex()}"
    name = f"shoal_rehearsal_{os.urandom(6).hex()}"
    os.mkdir(directory, 0o700)
    source = os.path.join(directory, name + ".py")
    saved_path, saved_bytecode = list(sys.path), sys.dont_write_bytecode
    saved_finders = set(sys.path_importer_cache)  # a finder cached here would be wrong in a sandbox
    try:
        fd = os.open(source, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        _write_fd(fd, b"def handler(event, context):\n    return {'statusCode': 200, 'body': event}\n")
        os.close(fd)
        sys.path.insert(0, directory)
        sys.dont_write_bytecode = True  # as in /var/task (read-only): compiled from source every time
        payload = b'{"rehearsal": true}'
        answers = (
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/json\r\n"
            b"Lambda-Runtime-Aws-Request-Id: rehearsal\r\nLambda-Runtime-Deadline-Ms: 0\r\n"
            b"Lambda-Runtime-Invoked-Function-Arn: rehearsal\r\nLambda-Runtime-Trace-Id: rehearsal\r\n\r\n%s"
            b"HTTP/1.1 202 Accepted\r\nContent-Length: 16\r\nContent-Type: application/json\r\n\r\n"
            b'{"status":"OK"}\n'
        ) % (len(payload), payload)
        for _ in range(rounds):
            _read_config(os.environ)  # main() sets these again in every environment
            _setup_sys_path(directory)
            handler = get_handler(name + ".handler")
            del sys.modules[name]
            ours, platform = _socket.socketpair()
            try:
                platform.sendall(answers)
                client = RuntimeClient("127.0.0.1:9001")
                client.sock = ours
                headers, body = client.next_invocation()
                client.reused = False  # the POST's answer is already waiting: no keep-alive check
                handle_event_request(client, handler, headers, body)
            finally:
                ours.close()
                platform.close()
    finally:
        sys.modules.pop(name, None)
        sys.path[:] = saved_path
        for entry in set(sys.path_importer_cache) - saved_finders:
            del sys.path_importer_cache[entry]
        sys.dont_write_bytecode = saved_bytecode
        os.environ.pop("_X_AMZN_TRACE_ID", None)
        _request_id = _tenant_id = None
        try:
            os.unlink(source)
        except FileNotFoundError:
            pass
        os.rmdir(directory)


def main():
    _read_config(os.environ)
    _setup_sys_path(os.environ.get("LAMBDA_TASK_ROOT") or "/var/task")
    _setup_process()
    client = RuntimeClient(os.environ.get("AWS_LAMBDA_RUNTIME_API") or "127.0.0.1:9001")
    snap_start = os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start"
    if snap_start:
        _install_snapshot_restore_py()

    try:
        request_handler = get_handler(os.environ.get("_HANDLER") or "")
    except Exception as e:
        if isinstance(e, FaultException):
            error_result = make_error(e.msg, e.exception_type, e.trace)
        else:
            error_result, _ = build_fault_result(sys.exc_info())
        log_warning(UNHANDLED_EXCEPTION_WARNING)
        log_error(error_result)
        try:
            client.post_init_error(error_result)
        except (OSError, RuntimeAPIError) as exc:
            _stderr_line(f"Failed to report the init error to the Runtime API: {exc}")
        _flush_std_streams()
        sys.exit(1)

    if snap_start:
        try:
            client = _snapshot(client)
        except (OSError, RuntimeAPIError) as exc:
            _stderr_line(f"LAMBDA_RUNTIME Failed to restore: {exc}")
            _flush_std_streams()
            sys.exit(1)

    while True:
        try:
            headers, body = client.next_invocation()
        except (OSError, RuntimeAPIError) as exc:
            _stderr_line(f"LAMBDA_RUNTIME Failed to get next invocation: {exc}")
            _flush_std_streams()
            sys.exit(1)
        try:
            handle_event_request(client, request_handler, headers, body)
        except (OSError, RuntimeAPIError) as exc:
            _stderr_line(f"LAMBDA_RUNTIME Failed to post the invocation result: {exc}")
            _flush_std_streams()
            sys.exit(1)


if __name__ == "__main__":
    main()

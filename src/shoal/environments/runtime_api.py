"""The server side of the Lambda Runtime API (2018-06-01), one endpoint per execution environment.

Each environment gets its own listening socket; its address is the environment's ``AWS_LAMBDA_RUNTIME_API``.
HTTP parsing is httptools'; the protocol below only routes the four Runtime API calls and answers with
``Content-Length`` bodies on keep-alive connections. One invocation at a time: ``/next`` is parked until the
environment is given an event.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httptools

MAX_RESPONSE_BYTES = 6_291_556  # spec §2.3: the response check is at 6,291,556
MAX_ERROR_BYTES = 1_048_576
_PREFIX = "/2018-06-01/runtime/"
_INVOCATION_RE = re.compile(r"/2018-06-01/runtime/invocation/([^/]+)/(response|error)")
_EXT_PREFIX = "/2020-01-01/extension/"
EXTENSION_EVENTS = frozenset({"INVOKE", "SHUTDOWN"})


@dataclass(slots=True)
class Extension:
    """An external extension that registered with the Extensions API (2020-01-01)."""

    name: str
    identifier: str
    events: frozenset[str]
    started: bool = False  # called event/next at least once: its INIT is done
    conn: _Connection | None = None  # parked on event/next
    queue: list[bytes] = field(default_factory=list)  # events not yet taken
    exit_error: str | None = None


def _ext_error(status: int, error_type: str, message: str) -> tuple[int, bytes]:
    return status, _json({"errorType": error_type, "errorMessage": message})


@dataclass(slots=True)
class Event:
    """An invocation handed to the runtime."""

    request_id: str
    payload: bytes
    deadline_ms: int
    invoked_arn: str
    trace_id: str
    client_context: str | None = None
    cognito_identity: str | None = None
    reply: asyncio.Future[Reply] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


@dataclass(frozen=True, slots=True)
class Reply:
    """How an invocation ended, as the environment sees it."""

    kind: str  # "response" | "error" | "too_large" | "exit" | "timeout"
    body: bytes = b""
    error_type: str | None = None
    returncode: int | None = None


def _json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


class RuntimeEndpoint:
    """The state an environment's Runtime API serves: readiness, the current event, init errors."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()  # first /next: INIT is done
        self.init_error: asyncio.Future[tuple[str, bytes]] = loop.create_future()
        # SnapStart: a snapshot's runtime waits on restore/next (its INIT is done) and is answered with the
        # copies to fork; a copy reports a failed after-restore hook on restore/error
        self.restore_error: asyncio.Future[tuple[str, bytes]] = loop.create_future()
        self._forks: list[bytes] = []
        self._restore_parked: _Connection | None = None
        self.current: Event | None = None
        self._queued: Event | None = None
        self._parked: _Connection | None = None
        self._server: asyncio.Server | None = None
        self.address = ""
        self.allowed_uid: int | None = None  # when set, only sockets owned by this uid may connect
        self.on_parked: Callable[[], None] | None = None  # the runtime waits on /next with nothing to do
        self._park_waiters: list[asyncio.Future[None]] = []
        self.refused = 0  # connections refused by the peer check
        self._runtime_ready = False  # the runtime called /next once
        self._expected: frozenset[str] = frozenset()  # the discovered external extensions (file names)
        self._function_info = b"{}"
        self.extensions: dict[str, Extension] = {}  # by identifier
        self._by_name: dict[str, Extension] = {}

    async def listen(self, host: str = "127.0.0.1") -> str:
        """Serve on a new port of ``host`` (an IP address). The socket is made here rather than by
        ``create_server(host, 0)``, whose address resolution costs a cold start ~0.1 ms."""
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((host, 0))
            sock.listen(16)
            await self.adopt(sock)
        except BaseException:
            sock.close()
            raise
        self.address = f"{host}:{sock.getsockname()[1]}"
        return self.address

    async def adopt(self, sock: socket.socket) -> None:
        """Serve on a listening socket made elsewhere (inside the environment's own network namespace)."""
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        self._server = await loop.create_server(lambda: _Connection(self), sock=sock)

    def peer_allowed(self, transport: asyncio.BaseTransport) -> bool:
        if self.allowed_uid is None:
            return True
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        ok = peer is not None and local is not None and socket_owner(peer, local) == self.allowed_uid
        if not ok:
            self.refused += 1
        return ok

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._parked is not None:
            self._parked.close()
            self._parked = None
        for ext in self._by_name.values():
            if ext.conn is not None:
                ext.conn.close()
                ext.conn = None

    # ---- platform side --------------------------------------------------------------------------------

    def expect_extensions(self, names: list[str], function_name: str, version: str, handler: str) -> None:
        """The external extensions this environment starts: INIT also waits for each to register and call
        ``event/next``. Set before any process can connect."""
        self._expected = frozenset(names)
        self._function_info = _json(
            {"functionName": function_name, "functionVersion": version, "handler": handler}
        )

    def _check_ready(self) -> None:
        if self.ready.done() or not self._runtime_ready:
            return
        if all((ext := self._by_name.get(n)) is not None and ext.started for n in self._expected):
            self.ready.set_result(None)

    def _extensions_parked(self) -> bool:
        return all(ext.conn is not None for ext in self._by_name.values())

    def _send_extension_event(self, ext: Extension, body: bytes) -> None:
        if ext.conn is not None:
            conn, ext.conn = ext.conn, None
            conn.send_extension_event(body)
        else:
            ext.queue.append(body)

    def shutdown_extensions(self, reason: str, deadline_ms: int) -> bool:
        """Send SHUTDOWN to the extensions registered for it; whether there were any."""
        body = _json({"eventType": "SHUTDOWN", "shutdownReason": reason, "deadlineMs": deadline_ms})
        told = False
        for ext in self._by_name.values():
            if "SHUTDOWN" in ext.events:
                self._send_extension_event(ext, body)
                told = True
        return told

    def deliver(self, event: Event) -> None:
        """Hand ``event`` to the runtime: answer the parked ``/next`` now, or the next one that comes."""
        self.current = event
        if self._parked is not None:
            conn, self._parked = self._parked, None
            conn.send_event(event)
        else:
            self._queued = event
        if self._by_name:
            body = _json(
                {
                    "eventType": "INVOKE",
                    "deadlineMs": event.deadline_ms,
                    "requestId": event.request_id,
                    "invokedFunctionArn": event.invoked_arn,
                    "tracing": {"type": "X-Amzn-Trace-Id", "value": event.trace_id},
                }
            )
            for ext in self._by_name.values():
                if "INVOKE" in ext.events:
                    self._send_extension_event(ext, body)

    @property
    def parked(self) -> bool:
        """The runtime waits on ``/next`` (or, a snapshot, on ``restore/next``) and every extension on
        ``event/next``: it has nothing to do."""
        waiting = self._parked is not None or self._restore_parked is not None
        return waiting and (not self._by_name or self._extensions_parked())

    def request_fork(self, body: bytes) -> None:
        """A snapshot's runtime: fork the copy ``body`` describes (answers ``restore/next``, now or later)."""
        if self._restore_parked is not None:
            conn, self._restore_parked = self._restore_parked, None
            conn.send_fork(body)
        else:
            self._forks.append(body)

    def until_parked(self) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.parked:
            waiter.set_result(None)
        else:
            self._park_waiters.append(waiter)
        return waiter

    def finish(self, reply: Reply) -> None:
        """End the current invocation (also used for exits and timeouts)."""
        event = self.current
        if event is not None and not event.reply.done():
            event.reply.set_result(reply)
        self.current = None
        self._queued = None

    # ---- runtime side ---------------------------------------------------------------------------------

    def on_next(self, conn: _Connection) -> None:
        if not self._runtime_ready:
            self._runtime_ready = True
            self._check_ready()
        if self._queued is not None:
            event, self._queued = self._queued, None
            conn.send_event(event)
            return
        if self._parked is not None and self._parked is not conn:
            self._parked.close()
        self._parked = conn
        self._on_park()

    def on_restore_next(self, conn: _Connection) -> None:
        """``restore/next``: the runtime has initialised and run its before-snapshot hooks; it waits to be
        restored (here: to be told which copies to fork)."""
        if not self._runtime_ready:
            self._runtime_ready = True
            self._check_ready()
        if self._forks:
            conn.send_fork(self._forks.pop(0))
            return
        if self._restore_parked is not None and self._restore_parked is not conn:
            self._restore_parked.close()
        self._restore_parked = conn
        self._on_park()

    def on_restore_error(self, body: bytes, error_type: str | None) -> tuple[int, bytes]:
        """An after-restore hook failed."""
        if not self.restore_error.done():
            self.restore_error.set_result((error_type or "Runtime.Unknown", body))
        return 202, b'{"status":"OK"}'

    def _on_park(self) -> None:
        if not self.parked:
            return
        for waiter in self._park_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._park_waiters.clear()
        if self.on_parked is not None:
            self.on_parked()

    def on_result(
        self, request_id: str, kind: str, body: bytes, too_large: bool, error_type: str | None
    ) -> tuple[int, bytes]:
        event = self.current
        if event is None or self._queued is event:
            return 403, _json(
                {
                    "errorType": "InvalidStateTransition",
                    "errorMessage": "no invocation is in progress in this environment",
                }
            )
        if request_id != event.request_id:
            return 400, _json(
                {"errorType": "InvalidRequestID", "errorMessage": f"Invalid request ID: {request_id!r}"}
            )
        if too_large:
            self.finish(Reply("too_large"))
            return 413, _json(
                {
                    "errorType": "RequestEntityTooLarge",
                    "errorMessage": f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
                }
            )
        self.finish(Reply(kind, body, error_type))
        return 202, b'{"status":"OK"}'

    def on_init_error(self, body: bytes, error_type: str | None) -> tuple[int, bytes]:
        if self._runtime_ready:
            return 403, _json(
                {
                    "errorType": "InvalidStateTransition",
                    "errorMessage": "init/error after the runtime finished INIT",
                }
            )
        if not self.init_error.done():
            self.init_error.set_result((error_type or "Runtime.Unknown", body))
        return 202, b'{"status":"OK"}'

    # ---- extension side -------------------------------------------------------------------------------

    def _extension_of(self, identifier: bytes | None) -> Extension | tuple[int, bytes]:
        if not identifier:
            return _ext_error(
                403, "Extension.MissingExtensionIdentifier", "missing Lambda-Extension-Identifier header"
            )
        ext = self.extensions.get(identifier.decode("latin-1"))
        if ext is None:
            return _ext_error(
                403, "Extension.UnknownExtensionIdentifier", "unknown Lambda-Extension-Identifier"
            )
        return ext

    def on_register(self, name: bytes | None, body: bytes) -> tuple[int, bytes, list[tuple[str, str]]]:
        def refuse(status_body: tuple[int, bytes]) -> tuple[int, bytes, list[tuple[str, str]]]:
            return status_body[0], status_body[1], []

        text = name.decode("latin-1") if name else ""
        if not text:
            return refuse(
                _ext_error(403, "Extension.MissingExtensionName", "missing Lambda-Extension-Name header")
            )
        if self.ready.done():
            return refuse(
                _ext_error(403, "Extension.RegistrationClosed", "registration is closed: INIT is over")
            )
        if text not in self._expected:
            return refuse(
                _ext_error(
                    403,
                    "Extension.InvalidExtensionName",
                    f"{text!r} is not the file name of an external extension in /opt/extensions",
                )
            )
        if text in self._by_name:
            return refuse(
                _ext_error(403, "Extension.AlreadyRegistered", f"extension {text!r} is already registered")
            )
        try:
            events = json.loads(body or b"{}").get("events", [])
            if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
                raise ValueError
        except (ValueError, AttributeError):
            return refuse(_ext_error(400, "InvalidRequestFormat", 'the body must be {"events": [...]}'))
        unknown = [e for e in events if e not in EXTENSION_EVENTS]
        if unknown:
            return refuse(
                _ext_error(400, "Extension.InvalidEventType", f"unknown event types: {', '.join(unknown)}")
            )
        ext = Extension(text, str(uuid.uuid4()), frozenset(events))
        self.extensions[ext.identifier] = ext
        self._by_name[text] = ext
        return (
            200,
            self._function_info,
            [
                ("Content-Type", "application/json"),
                ("Lambda-Extension-Identifier", ext.identifier),
            ],
        )

    def on_extension_next(self, conn: _Connection, identifier: bytes | None) -> tuple[int, bytes] | None:
        found = self._extension_of(identifier)
        if not isinstance(found, Extension):
            return found
        if not found.started:
            found.started = True
            self._check_ready()
        if found.queue:
            conn.send_extension_event(found.queue.pop(0))
            return None
        if found.conn is not None and found.conn is not conn:
            found.conn.close()
        found.conn = conn
        conn.parked_for = found
        self._on_park()
        return None

    def on_extension_error(
        self, identifier: bytes | None, phase: str, error_type: str | None, body: bytes
    ) -> tuple[int, bytes]:
        found = self._extension_of(identifier)
        if not isinstance(found, Extension):
            return found
        kind = error_type or "Extension.Unknown"
        found.exit_error = kind
        if phase == "init" and not self.ready.done() and not self.init_error.done():
            message = f"RequestId: {{request_id}} Error: extension {found.name} failed to initialise: {kind}"
            self.init_error.set_result(
                ("Extension.InitError", _json({"errorType": "Extension.InitError", "errorMessage": message}))
            )
        return 202, b'{"status":"OK"}'


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection from the runtime, parsed by httptools."""

    def __init__(self, endpoint: RuntimeEndpoint) -> None:
        self.endpoint = endpoint
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._body_len = 0
        self._limit = MAX_RESPONSE_BYTES
        self.parked_for: Extension | None = None  # the extension this connection waits on event/next for

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.endpoint.peer_allowed(transport):
            transport.close()  # another environment's process (or anyone else): not this runtime's API
            return
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._send(400, _json({"errorType": "TruncatedHTTPRequest", "errorMessage": "malformed request"}))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.endpoint._parked is self:
            self.endpoint._parked = None
        if self.parked_for is not None and self.parked_for.conn is self:
            self.parked_for.conn = None
        self.transport = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_len = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        if self._headers.get(b"expect", b"").lower() == b"100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits for this before large bodies

    def on_body(self, body: bytes) -> None:
        self._body_len += len(body)
        if self._body_len <= self._limit:
            self._body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        path = self._url.split(b"?", 1)[0].decode("latin-1")
        endpoint = self.endpoint
        if method == b"GET" and path == _PREFIX + "invocation/next":
            endpoint.on_next(self)
            return
        if method == b"GET" and path == _PREFIX + "restore/next":
            endpoint.on_restore_next(self)
            return
        if path.startswith(_EXT_PREFIX):
            self._extension_request(method, path[len(_EXT_PREFIX) :])
            return
        if method != b"POST" or not path.startswith(_PREFIX):
            self._send(404, _json({"errorType": "NotFound", "errorMessage": f"unknown path {path}"}))
            return
        error_type_header = self._headers.get(b"lambda-runtime-function-error-type")
        error_type = error_type_header.decode("latin-1") if error_type_header else None
        body = b"".join(self._body)
        if path == _PREFIX + "init/error":
            self._send(*endpoint.on_init_error(body, error_type))
            return
        if path == _PREFIX + "restore/error":
            self._send(*endpoint.on_restore_error(body, error_type))
            return
        match = _INVOCATION_RE.fullmatch(path)
        if match is None:
            self._send(404, _json({"errorType": "NotFound", "errorMessage": f"unknown path {path}"}))
            return
        request_id, action = match.groups()
        if action == "response":
            status, reply = endpoint.on_result(
                request_id, "response", body, self._body_len > self._limit, None
            )
        else:
            status, reply = endpoint.on_result(
                request_id, "error", body[:MAX_ERROR_BYTES], False, error_type or "Unhandled"
            )
        self._send(status, reply)

    def _extension_request(self, method: bytes, action: str) -> None:
        endpoint = self.endpoint
        identifier = self._headers.get(b"lambda-extension-identifier")
        if method == b"GET" and action == "event/next":
            answer = endpoint.on_extension_next(self, identifier)
            if answer is not None:
                self._send(*answer)
            return
        if method == b"POST" and action == "register":
            status, body, headers = endpoint.on_register(
                self._headers.get(b"lambda-extension-name"), b"".join(self._body)
            )
            self._send(status, body, headers or None)
            return
        if method == b"POST" and action in ("init/error", "exit/error"):
            error_type = self._headers.get(b"lambda-extension-function-error-type")
            self._send(
                *endpoint.on_extension_error(
                    identifier,
                    action.split("/", 1)[0],
                    error_type.decode("latin-1") if error_type else None,
                    b"".join(self._body)[:MAX_ERROR_BYTES],
                )
            )
            return
        unknown = f"unknown path {_EXT_PREFIX}{action}"
        self._send(404, _json({"errorType": "NotFound", "errorMessage": unknown}))

    # responses
    def send_extension_event(self, body: bytes) -> None:
        self.parked_for = None
        self._send(
            200,
            body,
            [("Content-Type", "application/json"), ("Lambda-Extension-Event-Identifier", str(uuid.uuid4()))],
        )

    def send_fork(self, body: bytes) -> None:
        """Answer a snapshot's ``restore/next``: Shoal's bootstrap forks the copy ``body`` describes (a
        runtime without that header would resume in place, as after an AWS restore)."""
        self._send(200, body, [("Content-Type", "application/json"), ("Shoal-Fork", "1")])

    def send_event(self, event: Event) -> None:
        headers = [
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Aws-Request-Id", event.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(event.deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", event.invoked_arn),
            ("Lambda-Runtime-Trace-Id", event.trace_id),
        ]
        if event.client_context is not None:
            headers.append(("Lambda-Runtime-Client-Context", event.client_context))
        if event.cognito_identity is not None:
            headers.append(("Lambda-Runtime-Cognito-Identity", event.cognito_identity))
        self._send(200, event.payload, headers)

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> None:
        if self.transport is None:
            return
        reason = {
            200: "OK",
            202: "Accepted",
            400: "Bad Request",
            403: "Forbidden",
            404: "Not Found",
            413: "Payload Too Large",
        }.get(status, "Error")
        head = [f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"]
        if headers is None:
            head.append("Content-Type: application/json\r\n")
        else:
            head.extend(f"{k}: {v}\r\n" for k, v in headers)
        head.append("\r\n")
        self.transport.write("".join(head).encode("latin-1") + body)


def _hex_endpoint(address: tuple[str, int]) -> str:
    """``("127.0.0.1", 9001)`` → ``0100007F:2329`` as in /proc/net/tcp (IPv4, little-endian address)."""
    packed = socket.inet_aton(address[0])
    return f"{int.from_bytes(packed, 'little'):08X}:{address[1]:04X}"


NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 1
_NLMSG_ERROR = 2


def _diag_uid(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    """The owner of the TCP socket ``peer`` → ``local``, asked of the kernel by netlink ``sock_diag``: one
    exact lookup (~5 µs), whatever the number of sockets on the host."""
    sockid = struct.pack(
        "!HH16s16sI8s",
        peer[1],
        local[1],
        socket.inet_aton(peer[0]).ljust(16, b"\0"),
        socket.inet_aton(local[0]).ljust(16, b"\0"),
        0,
        b"\xff" * 8,  # any interface; INET_DIAG_NOCOOKIE
    )
    request = struct.pack("=BBBxI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0xFFFFFFFF) + sockid
    header = struct.pack("=IHHII", 16 + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(1.0)
        nl.sendto(header + request, (0, 0))
        reply = nl.recv(8192)
    if len(reply) < 16:
        return None
    _, kind, _, _, _ = struct.unpack_from("=IHHII", reply)
    if kind != SOCK_DIAG_BY_FAMILY or len(reply) < 16 + 72:
        return None
    # inet_diag_msg: family, state, timer, retrans (4), sockid (48), expires, rqueue, wqueue, uid, inode
    (uid,) = struct.unpack_from("=I", reply, 16 + 4 + 48 + 12)
    return int(uid)


def socket_owner(peer: tuple[str, int], local: tuple[str, int]) -> int | None:
    """The uid owning the client socket ``peer`` connected to our ``local`` address.

    Asked once per Runtime API connection (runtimes keep one keep-alive connection), never per invocation:
    by netlink sock_diag, or, where that is unavailable, by scanning /proc/net/tcp.
    """
    try:
        uid = _diag_uid(peer, local)
        if uid is not None:
            return uid
    except OSError:
        pass
    want_local, want_remote = _hex_endpoint(peer), _hex_endpoint(local)
    try:
        with open("/proc/net/tcp") as fh:
            next(fh)
            for line in fh:
                fields = line.split()
                if fields[1] == want_local and fields[2] == want_remote:
                    return int(fields[7])
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return None

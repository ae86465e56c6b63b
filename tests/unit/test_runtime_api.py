"""The Runtime API server side, driven over a real loopback socket by a minimal HTTP client."""

import asyncio
import json

import pytest

from shoal.environments.runtime_api import MAX_RESPONSE_BYTES, Event, RuntimeEndpoint


class Client:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, address):
        host, port = address.split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def send(self, method, path, body=b"", headers=()):
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers)
        self.writer.write(head.encode() + b"\r\n" + body)
        await self.writer.drain()

    async def recv(self):
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        headers = {}
        while (line := await self.reader.readline()) != b"\r\n":
            k, _, val = line.decode().partition(":")
            headers[k.strip().lower()] = val.strip()
        body = await self.reader.readexactly(int(headers["content-length"]))
        return status, headers, body

    def close(self):
        self.writer.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def event(rid="r1", payload=b'{"a":1}'):
    return Event(rid, payload, 1_900_000_000_000, "arn:aws:lambda:us-east-1:123456789012:function:f", "Root=1-x",
                 client_context='{"custom":{"k":"v"}}')


def test_next_parks_until_an_event_then_result_completes_it():
    async def scenario():
        ep = RuntimeEndpoint()
        client = await Client.connect(await ep.listen())
        await client.send("GET", "/2018-06-01/runtime/invocation/next")
        await asyncio.wait_for(ep.ready, 5)
        ev = event()
        ep.deliver(ev)
        status, headers, body = await client.recv()
        assert status == 200 and body == b'{"a":1}'
        assert headers["lambda-runtime-aws-request-id"] == "r1"
        assert headers["lambda-runtime-deadline-ms"] == "1900000000000"
        assert headers["lambda-runtime-invoked-function-arn"].endswith(":function:f")
        assert headers["lambda-runtime-trace-id"] == "Root=1-x"
        assert json.loads(headers["lambda-runtime-client-context"]) == {"custom": {"k": "v"}}
        await client.send("POST", "/2018-06-01/runtime/invocation/r1/response", b'"ok"')
        status, _, body = await client.recv()  # same keep-alive connection
        assert (status, json.loads(body)) == (202, {"status": "OK"})
        reply = await ev.reply
        assert (reply.kind, reply.body) == ("response", b'"ok"')
        client.close()
        ep.close()

    run(scenario())


def test_event_delivered_before_next_is_queued():
    async def scenario():
        ep = RuntimeEndpoint()
        client = await Client.connect(await ep.listen())
        ev = event("r2")
        ep.deliver(ev)
        await client.send("GET", "/2018-06-01/runtime/invocation/next")
        status, headers, _ = await client.recv()
        assert headers["lambda-runtime-aws-request-id"] == "r2"
        await client.send("POST", "/2018-06-01/runtime/invocation/r2/error", b'{"errorType":"X"}',
                          [("Lambda-Runtime-Function-Error-Type", "Unhandled")])
        assert (await client.recv())[0] == 202
        reply = await ev.reply
        assert (reply.kind, reply.error_type) == ("error", "Unhandled")
        client.close()
        ep.close()

    run(scenario())


@pytest.mark.parametrize(("path", "status", "error_type"), [
    ("/2018-06-01/runtime/invocation/other/response", 400, "InvalidRequestID"),
    ("/2018-06-01/runtime/nope", 404, "NotFound"),
])
def test_bad_requests(path, status, error_type):
    async def scenario():
        ep = RuntimeEndpoint()
        client = await Client.connect(await ep.listen())
        ep.deliver(event("r3"))
        await client.send("GET", "/2018-06-01/runtime/invocation/next")
        await client.recv()
        await client.send("POST", path, b"{}")
        got_status, _, body = await client.recv()
        assert got_status == status
        assert json.loads(body)["errorType"] == error_type
        client.close()
        ep.close()

    run(scenario())


def test_result_without_invocation_is_an_invalid_state_transition():
    async def scenario():
        ep = RuntimeEndpoint()
        client = await Client.connect(await ep.listen())
        await client.send("POST", "/2018-06-01/runtime/invocation/x/response", b"{}")
        status, _, body = await client.recv()
        assert status == 403 and json.loads(body)["errorType"] == "InvalidStateTransition"
        client.close()
        ep.close()

    run(scenario())


def test_oversized_response_is_refused_with_413():
    async def scenario():
        ep = RuntimeEndpoint()
        client = await Client.connect(await ep.listen())
        ev = event("big")
        ep.deliver(ev)
        await client.send("GET", "/2018-06-01/runtime/invocation/next")
        await client.recv()
        await client.send("POST", "/2018-06-01/runtime/invocation/big/response", b"x" * (MAX_RESPONSE_BYTES + 1))
        status, _, body = await client.recv()
        assert status == 413 and json.loads(body)["errorType"] == "RequestEntityTooLarge"
        assert (await ev.reply).kind == "too_large"
        client.close()
        ep.close()

    run(scenario())


def test_init_error_before_first_next():
    async def scenario():
        ep = RuntimeEndpoint()
        client = await Client.connect(await ep.listen())
        await client.send("POST", "/2018-06-01/runtime/init/error", b'{"errorType":"Runtime.ImportModuleError"}',
                          [("Lambda-Runtime-Function-Error-Type", "Runtime.ImportModuleError")])
        assert (await client.recv())[0] == 202
        error_type, body = await ep.init_error
        assert error_type == "Runtime.ImportModuleError" and b"ImportModuleError" in body
        client.close()
        ep.close()

    run(scenario())

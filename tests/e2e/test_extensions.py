"""External extensions at the wire (spec §3.2, §3.4): a layer with ``extensions/myext`` attached to a Python
function; the extension's INVOKE lines reach the function's log, read back through the CloudWatch Logs API."""

from __future__ import annotations

import io
import json
import shutil
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import unique_name

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="the test extension needs curl")

EXTENSION = """#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension"
HEAD=$(curl -sS -D - -o /dev/null -X POST "$API/register" -H "Lambda-Extension-Name: myext" \\
       -d '{"events":["INVOKE","SHUTDOWN"]}')
ID=$(printf '%s\\n' "$HEAD" | grep -i '^lambda-extension-identifier:' | cut -d' ' -f2 | tr -d '\\r')
echo "[myext] registered"
while true; do
  EV=$(curl -sS "$API/event/next" -H "Lambda-Extension-Identifier: $ID")
  echo "[myext] $EV"
  case "$EV" in *SHUTDOWN*) exit 0;; esac
done
"""

HANDLER = "def handler(event, context):\n    return {'rid': context.aws_request_id}\n"


def layer_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("extensions/myext", date_time=(2024, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, EXTENSION)
    return buf.getvalue()


@pytest.fixture
def layer(lambda_client: Any) -> Iterator[dict[str, Any]]:
    name = unique_name("ext-layer")
    resp = lambda_client.publish_layer_version(LayerName=name, Content={"ZipFile": layer_zip()})
    yield resp
    lambda_client.delete_layer_version(LayerName=name, VersionNumber=resp["Version"])


def test_extension_from_a_layer_sees_each_invoke(
    lambda_client: Any, logs_client: Any, layer: dict[str, Any], make_function: Any
) -> None:
    name = unique_name("with-ext")
    make_function(name, {"app.py": HANDLER}, Layers=[layer["LayerVersionArn"]])
    rids = []
    for _ in range(2):
        resp = lambda_client.invoke(FunctionName=name, Payload=b"{}")
        assert "FunctionError" not in resp, resp["Payload"].read()
        rid = resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
        assert json.loads(resp["Payload"].read()) == {"rid": rid}
        rids.append(rid)
    group = f"/aws/lambda/{name}"
    deadline = time.monotonic() + 20
    seen: dict[str, dict[str, Any]] = {}
    messages: list[str] = []
    while time.monotonic() < deadline:
        messages = []
        try:
            for page in logs_client.get_paginator("filter_log_events").paginate(logGroupName=group):
                messages.extend(e["message"].rstrip("\n") for e in page["events"])
        except ClientError as exc:  # the group appears with the first flush (every 0.2 s)
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
        for message in messages:
            if message.startswith("[myext] {"):
                event = json.loads(message.removeprefix("[myext] "))
                if event["eventType"] == "INVOKE":
                    seen[event["requestId"]] = event
        if all(rid in seen for rid in rids):
            break
        time.sleep(0.3)
    assert all(rid in seen for rid in rids), messages
    assert seen[rids[0]]["invokedFunctionArn"].endswith(f":function:{name}")
    assert messages.index("[myext] registered") < next(
        i for i, m in enumerate(messages) if m.startswith("START RequestId")
    )

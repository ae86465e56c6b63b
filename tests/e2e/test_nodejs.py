"""Node.js functions (nodejs18.x / nodejs20.x / nodejs22.x) through boto3 against ``shoal server``.

Each id runs on an installed ``node`` of its major version (docs/runtimes/nodejs.md); the behaviour checked
is the AWS Node.js runtime's: CommonJS and ES module handlers, async and callback handlers, results, the
``errorType``/``errorMessage``/``trace`` error shape, context, environment, console lines, warm reuse,
timeouts, init errors, and CreateFunction refusing a major version the host does not have.
Spec §2.4, §4, §5.2.
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from shoal.runtimes.nodejs import SUPPORTED, NodeFamily
from tests.e2e.conftest import unique_name

FOUND = NodeFamily().discover({})
RUNTIME = next(iter(FOUND), "nodejs20.x")
pytestmark = pytest.mark.skipif(
    RUNTIME not in FOUND,
    reason="no node 18, 20 or 22 on this host: install Node.js (Debian: apt-get install -y nodejs)",
)
REPORT_RE = re.compile(r"REPORT RequestId: (\S+)\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\t.*")
TASK = r"(?:/var/task|/\S+)"  # the code's path: /var/task in the namespace sandbox, a host path otherwise
RUNTIME_DIR = r"(?:/var/runtime|/\S+)"
CONSOLE_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t(\S+)\t([A-Z]+)\t(.*)")


def invoke(client: Any, name: str, event: Any = None, **kw: Any) -> tuple[dict[str, Any], bytes, list[str]]:
    """(response, raw payload, tail log lines) of a RequestResponse invoke with LogType=Tail."""
    resp = client.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode(), LogType="Tail", **kw)
    payload = resp["Payload"].read()
    log = base64.b64decode(resp["LogResult"]).decode("utf-8", "replace")
    return resp, payload, log.rstrip("\n").split("\n")


def rid_of(resp: dict[str, Any]) -> str:
    return str(resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"])


def body_lines(lines: list[str], rid: str) -> list[str]:
    """The function's own lines between START and END."""
    start = lines.index(f"START RequestId: {rid} Version: $LATEST")
    end = lines.index(f"END RequestId: {rid}")
    return lines[start + 1 : end]


def node_function(
    make_function: Any, files: dict[str, str], handler: str = "index.handler", **kw: Any
) -> str:
    name = unique_name("node")
    make_function(name, files, handler, RUNTIME, **kw)
    return name


FUNCTION = """\
let count = 0;
console.log('init line');

exports.handler = async (event, context) => {
  count += 1;
  console.log('hello', event.who, { n: count });
  console.warn('first\\nsecond');
  return {
    count,
    who: event.who,
    requestId: context.awsRequestId,
    functionName: context.functionName,
    functionVersion: context.functionVersion,
    arn: context.invokedFunctionArn,
    memory: context.memoryLimitInMB,
    remaining: context.getRemainingTimeInMillis(),
    logGroup: context.logGroupName,
    logStream: context.logStreamName,
    waits: context.callbackWaitsForEmptyEventLoop,
    clientContext: context.clientContext,
    myVar: process.env.MY_VAR,
    executionEnv: process.env.AWS_EXECUTION_ENV,
    handler: process.env._HANDLER,
    nodePath: process.env.NODE_PATH,
    taskRoot: process.env.LAMBDA_TASK_ROOT,
    cwd: process.cwd(),
    node: process.versions.node,
  };
};
"""


def test_result_context_env_logs_and_warm_reuse(
    lambda_client: Any, make_function: Any, endpoint: str
) -> None:
    name = node_function(
        make_function,
        {"index.js": FUNCTION},
        MemorySize=256,
        Timeout=9,
        Environment={"Variables": {"MY_VAR": "mine"}},
    )
    cc = base64.b64encode(json.dumps({"custom": {"k": "v"}, "env": {}, "client": {}}).encode()).decode()
    resp, payload, lines = invoke(lambda_client, name, {"who": "ada"}, ClientContext=cc)
    rid = rid_of(resp)
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp
    out = json.loads(payload)
    major = out["node"].split(".")[0]
    assert RUNTIME == f"nodejs{major}.x"
    assert out["count"] == 1 and out["who"] == "ada"
    assert out["requestId"] == rid
    assert out["functionName"] == name and out["functionVersion"] == "$LATEST"
    assert out["arn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    assert out["memory"] == "256"  # a string, as in AWS's Node.js runtime
    assert 0 < out["remaining"] <= 9000
    assert out["logGroup"] == f"/aws/lambda/{name}"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", out["logStream"])
    assert out["waits"] is True
    assert out["clientContext"] == {"custom": {"k": "v"}, "env": {}, "client": {}}
    assert out["myVar"] == "mine"
    assert out["executionEnv"] == f"AWS_Lambda_{RUNTIME}"
    assert out["handler"] == "index.handler"
    assert out["taskRoot"] == out["cwd"]
    assert out["nodePath"].startswith(f"/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:")
    assert out["nodePath"].endswith("/node_modules")

    own = body_lines(lines, rid)
    parsed = [CONSOLE_RE.fullmatch(line) for line in own]
    assert all(parsed), own
    assert [(m[1], m[2], m[3]) for m in parsed if m] == [
        (rid, "INFO", "hello ada { n: 1 }"),
        (rid, "WARN", "first\rsecond"),  # a multi-line message is one log event
    ]
    report = [line for line in lines if line.startswith("REPORT ")][-1]
    assert REPORT_RE.fullmatch(report) and "Init Duration" in report

    _, payload2, lines2 = invoke(lambda_client, name, {"who": "bob"})
    assert json.loads(payload2)["count"] == 2  # warm: module state survived
    assert "Init Duration" not in [line for line in lines2 if line.startswith("REPORT ")][-1]
    assert not any(line.startswith("INIT_START") for line in lines2)

    # INIT output is in the function's log group, before the first START: no request id yet, as on AWS
    logs = boto3.client(
        "logs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )
    deadline = time.monotonic() + 20
    messages: list[str] = []
    while time.monotonic() < deadline and not any(m.startswith("REPORT") for m in messages[2:]):
        try:
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        except ClientError:
            events = []
        messages = [e["message"].rstrip("\n") for e in events]
        time.sleep(0.1)
    assert messages[0].startswith(f"INIT_START Runtime Version: nodejs:{major}.v"), messages
    init = CONSOLE_RE.fullmatch(messages[1])
    assert init and (init[1], init[2], init[3]) == ("undefined", "INFO", "init line")
    assert messages[2] == f"START RequestId: {rid} Version: $LATEST"


@pytest.mark.parametrize(
    "files, handler",
    [
        pytest.param(
            {"index.mjs": "export const handler = async (e) => ({ kind: 'mjs', e });"},
            "index.handler",
            id="mjs",
        ),
        pytest.param(
            {
                "package.json": '{"type":"module"}',
                "src/app.js": "export async function main(e) { return { kind: 'module', e }; }",
            },
            "src/app.main",
            id="type-module",
        ),
        pytest.param(
            {"lib/h.cjs": "module.exports.handler = async (e) => ({ kind: 'cjs', e });"},
            "lib/h.handler",
            id="cjs",
        ),
    ],
)
def test_module_kinds(lambda_client: Any, make_function: Any, files: dict[str, str], handler: str) -> None:
    name = node_function(make_function, files, handler)
    _, payload, _ = invoke(lambda_client, name, {"x": 1})
    assert json.loads(payload)["e"] == {"x": 1}


def test_callback_handlers(lambda_client: Any, make_function: Any) -> None:
    name = node_function(
        make_function,
        {
            "index.js": """
exports.handler = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = event.wait;
  setTimeout(() => console.log('timer'), 200);
  callback(null, { wait: event.wait });
};
"""
        },
    )
    resp, payload, lines = invoke(lambda_client, name, {"wait": True})
    assert json.loads(payload) == {"wait": True}
    assert [line.split("\t")[-1] for line in body_lines(lines, rid_of(resp))] == ["timer"]
    resp, payload, lines = invoke(lambda_client, name, {"wait": False})
    assert json.loads(payload) == {"wait": False}
    # answered at once; this invocation's own timer has not run yet (it runs when the environment thaws)
    assert body_lines(lines, rid_of(resp)).count("timer") == 0


def test_function_error_shape_and_log(lambda_client: Any, make_function: Any) -> None:
    name = node_function(
        make_function, {"index.js": "function handler(event) {\n  x;\n}\nexports.handler = handler;\n"}
    )
    resp, payload, lines = invoke(lambda_client, name)
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    err = json.loads(payload)
    assert list(err) == ["errorType", "errorMessage", "trace"]
    assert (err["errorType"], err["errorMessage"]) == ("ReferenceError", "x is not defined")
    assert err["trace"][0] == "ReferenceError: x is not defined"
    assert re.fullmatch(rf"    at Runtime\.handler \({TASK}/index\.js:2:3\)", err["trace"][1])
    (line,) = body_lines(lines, rid_of(resp))
    m = CONSOLE_RE.fullmatch(line)
    assert m and m[2] == "ERROR" and m[3].startswith('Invoke Error \t{"errorType":"ReferenceError"')
    report = [ln for ln in lines if ln.startswith("REPORT ")][-1]
    assert "Status:" not in report  # a function error is not a platform error


def test_uncaught_exception_then_a_fresh_runtime(lambda_client: Any, make_function: Any) -> None:
    name = node_function(
        make_function,
        {
            "index.js": """
let count = 0;
exports.handler = async (event) => {
  count += 1;
  if (event.crash) {
    setTimeout(() => { throw new Error('crash ' + count); }, 5);
    await new Promise((r) => setTimeout(r, 3000));
  }
  return count;
};
"""
        },
        Timeout=10,
    )
    _, payload, _ = invoke(lambda_client, name, {})
    assert json.loads(payload) == 1
    resp, payload, _ = invoke(lambda_client, name, {"crash": True})
    assert resp["FunctionError"] == "Unhandled"
    assert {k: json.loads(payload)[k] for k in ("errorType", "errorMessage")} == {
        "errorType": "Error",
        "errorMessage": "crash 2",
    }
    _, payload, lines = invoke(lambda_client, name, {})
    assert json.loads(payload) == 1  # the process exited after the crash: a new one, with fresh module state
    assert "Init Duration" in [line for line in lines if line.startswith("REPORT ")][-1]


def test_timeout(lambda_client: Any, make_function: Any) -> None:
    name = node_function(
        make_function,
        {"index.js": "exports.handler = () => new Promise(() => setInterval(() => {}, 100));"},
        Timeout=1,
    )
    resp, payload, lines = invoke(lambda_client, name)
    rid = rid_of(resp)
    assert resp["FunctionError"] == "Unhandled"
    assert json.loads(payload) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {rid} Error: Task timed out after 1.00 seconds",
    }
    assert [line for line in lines if line.startswith("REPORT ")][-1].endswith("Status: timeout")


@pytest.mark.parametrize(
    "files, handler, error_type, message",
    [
        (
            {"other.js": ""},
            "index.handler",
            "Runtime.ImportModuleError",
            rf"Error: Cannot find module 'index'\nRequire stack:\n- {RUNTIME_DIR}/index\.mjs",
        ),
        (
            {"index.js": "require('left-pad-nowhere');"},
            "index.handler",
            "Runtime.ImportModuleError",
            rf"Error: Cannot find module 'left-pad-nowhere'\nRequire stack:\n- {TASK}/index\.js\n"
            rf"- {RUNTIME_DIR}/index\.mjs",
        ),
        (
            {"index.js": "exports.other = 1;"},
            "index.handler",
            "Runtime.HandlerNotFound",
            r"index\.handler is undefined or not exported",
        ),
        (
            {"index.js": "exports.handler = async () => {;"},
            "index.handler",
            "Runtime.UserCodeSyntaxError",
            r"SyntaxError: .+",
        ),
        ({"index.js": "exports.handler = 1;"}, "index", "Runtime.MalformedHandlerName", "Bad handler"),
        ({"index.js": "throw new RangeError('no config');"}, "index.handler", "RangeError", "no config"),
    ],
)
def test_init_errors(
    lambda_client: Any, make_function: Any, files: dict[str, str], handler: str, error_type: str, message: str
) -> None:
    name = node_function(make_function, files, handler)
    resp, payload, _ = invoke(lambda_client, name)
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    err = json.loads(payload)
    assert list(err) == ["errorType", "errorMessage", "trace"]
    assert err["errorType"] == error_type
    assert re.fullmatch(message, err["errorMessage"]), err["errorMessage"]
    assert err["trace"][0].startswith(f"{error_type}: ")


def test_json_log_format(lambda_client: Any, make_function: Any) -> None:
    name = node_function(
        make_function,
        {
            "index.js": """
exports.handler = async () => {
  console.info('plain', 1);
  console.debug('hidden at INFO');
  console.log({ structured: [1, 2] });
  return 'ok';
};
"""
        },
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "INFO"},
    )
    resp, _, lines = invoke(lambda_client, name)
    rid = rid_of(resp)
    records = [json.loads(line) for line in lines if line.startswith('{"timestamp"')]
    assert [(r["level"], r["message"], r["requestId"]) for r in records] == [
        ("INFO", "plain 1", rid),
        ("INFO", {"structured": [1, 2]}, rid),
    ]


def test_create_function_refuses_a_major_the_host_lacks(lambda_client: Any) -> None:
    missing = [f"nodejs{m}.x" for m in SUPPORTED if f"nodejs{m}.x" not in FOUND]
    if not missing:
        pytest.skip("this host has every supported Node.js major")
    with pytest.raises(ClientError) as caught:
        lambda_client.create_function(
            FunctionName=unique_name("node-missing"),
            Runtime=missing[0],
            Role="arn:aws:iam::123456789012:role/r",
            Handler="index.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidParameterValueException"
    assert missing[0] in error["Message"] and RUNTIME in error["Message"]

""".NET functions (dotnet8, on Mono) through boto3 against ``shoal server``.

The function is compiled here with Mono's mcs against the Amazon.Lambda.Core.dll and
Amazon.Lambda.Serialization.SystemTextJson.dll the runtime ships, and packaged as ``dotnet publish`` leaves
it (the assembly, its dependencies and AWS's API assemblies side by side at the root of the ZIP). Checked for
AWS's .NET behaviour: results, the errorType/errorMessage/stackTrace error shape, context, environment, the
.NET 6+ log line format, warm reuse, timeouts, init errors. Spec §2.4, §4, §5.2.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from typing import Any

import pytest

from shoal.runtimes import dotnet
from tests.e2e.conftest import make_zip, unique_name

FOUND = dotnet.DotnetFamily().discover({}) if dotnet.installed() is not None else {}
pytestmark = pytest.mark.skipif(
    "dotnet8" not in FOUND,
    reason="no Mono on this host: apt-get install -y --no-install-recommends mono-mcs",
)
REPORT_RE = re.compile(r"REPORT RequestId: (\S+)\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\t.*")
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"

SOURCE = r"""
using System;
using System.Collections.Generic;
using System.Threading.Tasks;
using Amazon.Lambda.Core;

[assembly: LambdaSerializer(typeof(Amazon.Lambda.Serialization.SystemTextJson.DefaultLambdaJsonSerializer))]

namespace HelloWorld
{
    public class Person
    {
        public string Name { get; set; }
        public List<string> Tags { get; set; }
    }

    public class Reply
    {
        public int Count { get; set; }
        public string Greeting { get; set; }
        public List<string> Tags { get; set; }
        public string RequestId { get; set; }
        public string FunctionName { get; set; }
        public string FunctionVersion { get; set; }
        public string Arn { get; set; }
        public int Memory { get; set; }
        public double Remaining { get; set; }
        public string LogGroup { get; set; }
        public string LogStream { get; set; }
        public string Client { get; set; }
        public IDictionary<string, string> Custom { get; set; }
        public string MyVar { get; set; }
        public string ExecutionEnv { get; set; }
        public string Handler { get; set; }
    }

    public class Function
    {
        private static int count;

        public async Task<Reply> Handle(Person person, ILambdaContext context)
        {
            count++;
            await Task.Yield();
            Console.WriteLine("hello from Console");
            context.Logger.LogLine("first\nsecond");
            context.Logger.LogError("an error {code}", 42);
            var cc = context.ClientContext;
            return new Reply
            {
                Count = count,
                Greeting = "Hello " + person.Name,
                Tags = person.Tags,
                RequestId = context.AwsRequestId,
                FunctionName = context.FunctionName,
                FunctionVersion = context.FunctionVersion,
                Arn = context.InvokedFunctionArn,
                Memory = context.MemoryLimitInMB,
                Remaining = context.RemainingTime.TotalMilliseconds,
                LogGroup = context.LogGroupName,
                LogStream = context.LogStreamName,
                Client = cc == null ? null : cc.Client.AppTitle,
                Custom = cc == null ? null : cc.Custom,
                MyVar = Environment.GetEnvironmentVariable("MY_VAR"),
                ExecutionEnv = Environment.GetEnvironmentVariable("AWS_EXECUTION_ENV"),
                Handler = Environment.GetEnvironmentVariable("_HANDLER"),
            };
        }

        public string Upper(string input) { return input.ToUpperInvariant(); }

        public int Divide(Dictionary<string, int> ev) { return 100 / ev["by"]; }

        public string Slow() { System.Threading.Thread.Sleep(30000); return "late"; }
    }

    public class Broken
    {
        public Broken() { throw new ArgumentException("cannot start"); }

        public string Handle(string input) { return input; }
    }
}
"""


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    runtime = FOUND["dotnet8"]
    mono = dotnet.probe(runtime.executable)
    assert mono is not None
    out = tmp_path_factory.mktemp("dotnet-e2e")
    src = out / "HelloWorld.cs"
    src.write_text(SOURCE)
    apis = dotnet.api_assemblies(runtime)
    argv = dotnet.compile_args(mono, "library", out / "HelloWorld.dll", apis, [src])
    argv.insert(2, "-debug")
    subprocess.run(argv, check=True, capture_output=True, timeout=120)
    files = {"HelloWorld.dll": (out / "HelloWorld.dll").read_bytes()}
    files["HelloWorld.dll.mdb"] = (out / "HelloWorld.dll.mdb").read_bytes()
    for api in apis:  # as `dotnet publish` ships them; the runtime provides its own
        files[api.name] = api.read_bytes()
    return make_zip(files)


def dotnet_function(make_function: Any, code: bytes, handler: str, **kw: Any) -> str:
    name = unique_name("dotnet")
    make_function(name, code, handler, "dotnet8", **kw)
    return name


def invoke(client: Any, name: str, event: Any = None, **kw: Any) -> tuple[dict[str, Any], bytes, list[str]]:
    """(response, raw payload, tail log lines) of a RequestResponse invoke with LogType=Tail."""
    payload = kw.pop("Payload", None)
    if payload is None:
        payload = json.dumps(event if event is not None else {}).encode()
    resp = client.invoke(FunctionName=name, Payload=payload, LogType="Tail", **kw)
    body = resp["Payload"].read()
    log = base64.b64decode(resp["LogResult"]).decode("utf-8", "replace")
    return resp, body, log.rstrip("\n").split("\n")


def rid_of(resp: dict[str, Any]) -> str:
    return str(resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"])


def body_lines(lines: list[str], rid: str) -> list[str]:
    start = lines.index(f"START RequestId: {rid} Version: $LATEST")
    end = lines.index(f"END RequestId: {rid}")
    return lines[start + 1 : end]


def test_result_context_env_logs_and_warm_reuse(
    lambda_client: Any, make_function: Any, package: bytes
) -> None:
    handler = "HelloWorld::HelloWorld.Function::Handle"
    name = dotnet_function(
        make_function, package, handler, MemorySize=256, Environment={"Variables": {"MY_VAR": "mine"}}
    )
    client_context = base64.b64encode(
        json.dumps({"client": {"app_title": "phone"}, "custom": {"k": "v"}, "env": {}}).encode()
    ).decode()
    resp, payload, lines = invoke(
        lambda_client, name, {"name": "Ann", "tags": ["a"], "extra": 1}, ClientContext=client_context
    )
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp, (payload, lines)
    got = json.loads(payload)
    rid = rid_of(resp)
    assert got["Count"] == 1 and got["Greeting"] == "Hello Ann" and got["Tags"] == ["a"]
    assert got["RequestId"] == rid
    assert got["FunctionName"] == name and got["FunctionVersion"] == "$LATEST"
    assert got["Arn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    assert got["Memory"] == 256 and 0 < got["Remaining"] <= 3000
    assert got["LogGroup"] == f"/aws/lambda/{name}"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", got["LogStream"])
    assert got["Client"] == "phone" and got["Custom"] == {"k": "v"}
    assert got["MyVar"] == "mine" and got["ExecutionEnv"] == "AWS_Lambda_dotnet8"
    assert got["Handler"] == handler
    logged = body_lines(lines, rid)
    assert len(logged) == 3, logged
    assert re.fullmatch(TIMESTAMP + f"\t{rid}\tinfo\thello from Console", logged[0])
    assert re.fullmatch(TIMESTAMP + f"\t{rid}\tinfo\tfirst\rsecond", logged[1])
    assert re.fullmatch(TIMESTAMP + f"\t{rid}\tfail\tan error 42", logged[2])
    report = lines[-1]
    assert REPORT_RE.fullmatch(report) and report.startswith(f"REPORT RequestId: {rid}\t")
    assert "Init Duration" in report and "Memory Size: 256 MB" in report

    _, payload2, lines2 = invoke(lambda_client, name, {"name": "Bob"})
    got2 = json.loads(payload2)
    assert got2["Count"] == 2  # static state survives in the warm environment
    assert "Client" not in got2 and "Tags" not in got2  # nulls are left out, as AWS's serializer does
    assert "Init Duration" not in lines2[-1]


def test_string_handler(lambda_client: Any, make_function: Any, package: bytes) -> None:
    name = dotnet_function(make_function, package, "HelloWorld::HelloWorld.Function::Upper")
    _, payload, _ = invoke(lambda_client, name, "shoal")
    assert payload == b'"SHOAL"'


def test_unhandled_exception(lambda_client: Any, make_function: Any, package: bytes) -> None:
    name = dotnet_function(make_function, package, "HelloWorld::HelloWorld.Function::Divide")
    resp, payload, lines = invoke(lambda_client, name, {"by": 0})
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    body = json.loads(payload)
    assert list(body) == ["errorType", "errorMessage", "stackTrace"]
    assert body["errorType"] == "DivideByZeroException"
    assert body["errorMessage"] == "Attempted to divide by zero."
    assert re.fullmatch(
        r"at HelloWorld\.Function\.Divide\(Dictionary`2 ev\) in .*HelloWorld\.cs:line \d+",
        body["stackTrace"][0],
    ), body
    logged = body_lines(lines, rid_of(resp))
    assert (
        len(logged) == 1
        and "\tfail\tSystem.DivideByZeroException: Attempted to divide by zero.\r" in logged[0]
    )
    _, payload, _ = invoke(lambda_client, name, {"by": 4})
    assert payload == b"25"  # the environment survived the exception


def test_timeout(lambda_client: Any, make_function: Any, package: bytes) -> None:
    name = dotnet_function(make_function, package, "HelloWorld::HelloWorld.Function::Slow", Timeout=1)
    resp, payload, lines = invoke(lambda_client, name)
    assert resp["FunctionError"] == "Unhandled"
    body = json.loads(payload)
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"] == f"RequestId: {rid_of(resp)} Error: Task timed out after 1.00 seconds"
    assert lines[-1].endswith("\tStatus: timeout")


def test_init_errors(lambda_client: Any, make_function: Any, package: bytes) -> None:
    name = dotnet_function(make_function, package, "HelloWorld::HelloWorld.Broken::Handle")
    resp, payload, lines = invoke(lambda_client, name, "x")
    assert resp["FunctionError"] == "Unhandled"
    body = json.loads(payload)
    assert body["errorType"] == "TargetInvocationException"
    assert (
        body["cause"]["errorType"] == "ArgumentException" and body["cause"]["errorMessage"] == "cannot start"
    )

    missing = dotnet_function(make_function, package, "Missing::HelloWorld.Function::Handle")
    resp, payload, lines = invoke(lambda_client, missing)
    assert resp["FunctionError"] == "Unhandled"
    body = json.loads(payload)
    assert body["errorType"] == "LambdaValidationException"
    assert body["errorMessage"].startswith(
        "Could not find the specified handler assembly with the file name 'Missing, Culture=neutral, "
        "PublicKeyToken=null'."
    )
    assert any(
        "\tfail\tAmazon.Lambda.RuntimeSupport.ExceptionHandling.LambdaValidationException" in line
        for line in lines
    )

    no_method = dotnet_function(make_function, package, "HelloWorld::HelloWorld.Function::Nope")
    resp, payload, _ = invoke(lambda_client, no_method)
    assert json.loads(payload)["errorMessage"] == (
        "Unable to find method 'Nope' in type 'HelloWorld.Function' from assembly 'HelloWorld': "
        "Found no methods matching method name 'Nope'."
    )

"""The .NET runtime on Mono, through a real Environment, on each sandbox backend.

Handler assemblies are compiled here with Mono's mcs against the runtime's Amazon.Lambda.Core.dll (and its
Amazon.Lambda.Serialization.SystemTextJson.dll), the way a function's author compiles against the NuGet
packages of those names.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from shoal.environments.environment import Environment, Invocation, Settings
from shoal.runtimes import dotnet
from tests.function_configs import function_config

INSTALL = "install Mono: apt-get install -y --no-install-recommends mono-mcs"
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"

FUNCTION = r"""
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Threading.Tasks;
using Amazon.Lambda.Core;

[assembly: LambdaSerializer(typeof(Amazon.Lambda.Serialization.SystemTextJson.DefaultLambdaJsonSerializer))]

namespace System.Text.Json.Serialization
{
    // as System.Text.Json declares them (a function compiled against that package has these)
    [AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
    public sealed class JsonPropertyNameAttribute : Attribute
    {
        public JsonPropertyNameAttribute(string name) { Name = name; }
        public string Name { get; private set; }
    }

    [AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
    public sealed class JsonIgnoreAttribute : Attribute
    {
    }
}

namespace Example
{
    using System.Text.Json.Serialization;

    public enum Size { Small, Large }

    public class Renamed
    {
        [JsonPropertyName("first_name")]
        public string First { get; set; }
        [JsonIgnore]
        public string Secret { get; set; }
        public DateTime At { get; set; }
    }

    public class Item
    {
        public string Sku { get; set; }
        public int Qty { get; set; }
    }

    public class Order
    {
        public string Id { get; set; }
        public int Count { get; set; }
        public long Big { get; set; }
        public double Ratio { get; set; }
        public bool Gift { get; set; }
        public decimal Price { get; set; }
        public Size Size { get; set; }
        public List<Item> Items { get; set; }
        public Dictionary<string, int> Stock { get; set; }
        public int[] Numbers { get; set; }
        public DateTime When { get; set; }
        public Guid? Ref { get; set; }
        public string Missing { get; set; }
        public string Note;
        public string Summary { get { return Id + "x" + Count; } }
    }

    public class Orders
    {
        public Order Handle(Order order, ILambdaContext context) { return order; }

        public Renamed Rename(Renamed r) { r.Secret = "not written"; return r; }
    }

    public class Ctx
    {
        private static int invocations;
        private static readonly long Loaded = DateTime.UtcNow.Ticks;

        public Dictionary<string, object> Handle(Dictionary<string, object> ev, ILambdaContext context)
        {
            invocations++;
            Console.WriteLine("stdout " + ev["n"]);
            Console.Error.WriteLine("stderr " + ev["n"]);
            Console.Write("raw write|");
            Console.WriteLine();
            context.Logger.LogLine("logger line one\nline two");
            context.Logger.LogWarning("leveled {who}", "warn");
            context.Logger.LogDebug("hidden below Information");
            LambdaLogger.Log("static logger");
            var o = new Dictionary<string, object>();
            o["invocations"] = invocations;
            o["loaded"] = Loaded;
            o["requestId"] = context.AwsRequestId;
            o["functionName"] = context.FunctionName;
            o["functionVersion"] = context.FunctionVersion;
            o["arn"] = context.InvokedFunctionArn;
            o["memory"] = context.MemoryLimitInMB;
            o["remaining"] = (long)context.RemainingTime.TotalMilliseconds;
            o["logGroup"] = context.LogGroupName;
            o["logStream"] = context.LogStreamName;
            var id = context.Identity;
            o["identity"] = id == null ? null : id.IdentityId + "/" + id.IdentityPoolId;
            var cc = context.ClientContext;
            o["client"] = cc == null ? null
                : cc.Client.AppTitle + "/" + cc.Custom["k"] + "/" + cc.Environment["platform"];
            o["trace"] = Environment.GetEnvironmentVariable("_X_AMZN_TRACE_ID");
            o["greeting"] = Environment.GetEnvironmentVariable("GREETING");
            o["taskRoot"] = Environment.GetEnvironmentVariable("LAMBDA_TASK_ROOT");
            o["cwd"] = Environment.CurrentDirectory;
            o["event"] = ev;
            return o;
        }
    }

    public class Simple
    {
        public static string Upper(string s) { return s.ToUpperInvariant(); }

        public static int Twice(int n) { return 2 * n; }

        public Stream Echo(Stream input, ILambdaContext context)
        {
            var text = new StreamReader(input).ReadToEnd();
            var echoed = "[" + text + "," + context.AwsRequestId.Length + "]";
            return new MemoryStream(Encoding.UTF8.GetBytes(echoed));
        }

        public void Nothing(ILambdaContext context)
        {
            Console.WriteLine("did nothing for " + context.AwsRequestId);
        }

        public async Task<Dictionary<string, int>> Later(Dictionary<string, int> ev)
        {
            await Task.Delay(10);
            var result = new Dictionary<string, int>();
            foreach (var pair in ev)
                result[pair.Key] = pair.Value * 10;
            return result;
        }

        public async Task Quiet() { await Task.Delay(5); Console.WriteLine("quiet done"); }

        public object Anonymous()
        {
            return new { Name = "anon", Values = new List<double> { 1.5, 2 }, Nothing = (string)null };
        }
    }

    public class Errors
    {
        public int Divide(Dictionary<string, int> ev, ILambdaContext context) { return 10 / ev["zero"]; }

        public string Wrapped()
        {
            try
            {
                return int.Parse("nope").ToString();
            }
            catch (FormatException e)
            {
                throw new InvalidOperationException("could not parse", e);
            }
        }

        public async Task<string> AsyncFail()
        {
            await Task.Delay(1);
            throw new ArgumentException("bad argument");
        }

        public string Sleep()
        {
            Console.WriteLine("going to sleep");
            System.Threading.Thread.Sleep(60000);
            return "late";
        }

        public string Several()
        {
            var one = new InvalidOperationException("one");
            throw new AggregateException("several", one, new ArgumentException("two"));
        }

        public string Exit() { Console.Write("bye without a newline"); Environment.Exit(3); return null; }
    }

    public class ShoutingSerializer : ILambdaSerializer
    {
        public T Deserialize<T>(Stream requestStream)
        {
            return (T)(object)("custom:" + new StreamReader(requestStream).ReadToEnd());
        }

        public void Serialize<T>(T response, Stream responseStream)
        {
            var bytes = Encoding.UTF8.GetBytes(response.ToString().ToUpperInvariant());
            responseStream.Write(bytes, 0, bytes.Length);
        }
    }

    public class Custom
    {
        [LambdaSerializer(typeof(ShoutingSerializer))]
        public string Handle(string s) { return s + "!"; }

        [LambdaSerializer(typeof(Amazon.Lambda.Serialization.SystemTextJson.CamelCaseLambdaJsonSerializer))]
        public Item Camel(Item item) { item.Qty++; return item; }
    }

    public class BadCtor
    {
        public BadCtor() { throw new InvalidOperationException("constructor failed"); }
        public string Handle(string s) { return s; }
    }

    public class BadStatic
    {
        private static readonly int Value = int.Parse("not a number");
        public static int Handle(string s) { return Value; }
    }

    public class Overloaded
    {
        public string Handle(string s) { return s; }
        public string Handle(int n) { return n.ToString(); }
    }

    public class TooMany
    {
        public string Handle(string a, string b, string c) { return a; }
    }

    public class NotContext
    {
        public string Handle(string a, string b) { return a; }
    }

    public class UsesLib
    {
        public string Handle(string s) { return Helpers.Text.Shout(s); }
    }
}
"""

LIBRARY = r"""
namespace Helpers
{
    public static class Text
    {
        public static string Shout(string s) { return s.ToUpperInvariant() + "!"; }
    }
}
"""


@pytest.fixture(scope="module")
def dotnet_runtime():
    if dotnet.installed() is None:
        pytest.skip(f"no Mono on this host: {INSTALL}")
    found = dotnet.DotnetFamily().discover({})
    if "dotnet8" not in found:
        pytest.skip(f"Mono is installed but has no C# compiler: {INSTALL}")
    return found["dotnet8"]


def mcs(runtime, out: Path, source: str, *references: Path) -> None:
    src = out.with_suffix(".cs")
    src.write_text(source)
    mono = dotnet.probe(runtime.executable)
    assert mono is not None
    argv = dotnet.compile_args(mono, "library", out, [*dotnet.api_assemblies(runtime), *references], [src])
    argv.insert(2, "-debug")  # line numbers in stack traces, as a function built in Debug has
    subprocess.run(argv, check=True, capture_output=True, timeout=120)
    src.unlink()


@pytest.fixture(scope="module")
def build(dotnet_runtime, tmp_path_factory):
    """The function's build output: Fn.dll (+ .mdb) and the Lib.dll it depends on."""
    out = tmp_path_factory.mktemp("dotnet-build")
    mcs(dotnet_runtime, out / "Lib.dll", LIBRARY)
    mcs(dotnet_runtime, out / "Fn.dll", FUNCTION, out / "Lib.dll")
    return out


def config(runtime_id, **kw):
    return function_config(
        **{
            "name": "dnfn",
            "runtime": runtime_id,
            "handler": "Fn::Example.Ctx::Handle",
            "timeout": 10,
            "memory_size": 256,
            **kw,
        }
    )


def _readable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _is_zombie_or_gone(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


@pytest.fixture
def make_env(tmp_path, sandbox_backend, dotnet_runtime, build):
    made = []

    def make(extra=None, **kw):
        code_dir = tmp_path / f"code{len(made)}"
        shutil.copytree(build, code_dir)
        if extra is not None:
            extra(code_dir)
        _readable(code_dir)  # as the code store leaves it: the sandboxed uid must read it
        lines: list[str] = []
        env = Environment(
            config(dotnet_runtime.id, **kw),
            dotnet_runtime,
            sandbox_backend,
            code_dir,
            tmp_path / "envs",
            lambda account, group, stream, ts, message: lines.append(message),
            Settings(region="us-east-1", init_timeout=10, endpoint="http://127.0.0.1:1"),
        )
        env.all_lines = lines
        made.append(env)
        return env

    yield make
    for env in made:  # the fixture ends every process it started
        if env.process is not None and env.process.returncode is None:
            env.process.kill()
        if env.process is not None:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not _is_zombie_or_gone(env.process.pid):
                time.sleep(0.02)
            assert _is_zombie_or_gone(env.process.pid)


def invocation(rid="req-1", payload=b"{}", **kw):
    return Invocation(
        request_id=rid,
        payload=payload,
        invoked_arn="arn:aws:lambda:us-east-1:123456789012:function:dnfn",
        **kw,
    )


def invoke_all(env, *invocations):
    async def scenario():
        await env.start()
        outs = [await env.invoke(inv) for inv in invocations]
        await env.shutdown()
        return outs

    return asyncio.run(asyncio.wait_for(scenario(), 90))


def body_lines(out):
    """The function's own lines of an invocation (between START and END)."""
    return out.log_lines[1:-2]


# ---- results, context, logs, reuse ------------------------------------------------------------------------


def test_context_env_logs_and_warm_reuse(make_env):
    env = make_env(environment={"GREETING": "hi"})
    cc = json.dumps(
        {
            "client": {"app_title": "app", "installation_id": "i1"},
            "custom": {"k": "v"},
            "env": {"platform": "Android"},
        }
    )
    trace = "Root=1-5e1b4151-5ac6c58f5b3daa6b0a3b1c2d;Parent=53995c3f42cd8ad8;Sampled=1"
    first, second = invoke_all(
        env,
        invocation("a", b'{"n": 1}', trace_id=trace),
        invocation("b", b'{"n": 2.5, "list": [true, null, "x"]}', client_context=cc),
    )
    assert not first.function_error, (first.payload, env.all_lines)
    one, two = json.loads(first.payload), json.loads(second.payload)
    assert one["invocations"] == 1 and two["invocations"] == 2  # static state survives: warm reuse
    assert one["loaded"] == two["loaded"]
    assert one["requestId"] == "a" and two["requestId"] == "b"
    assert one["functionName"] == "dnfn" and one["functionVersion"] == "$LATEST"
    assert one["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:dnfn"
    assert one["memory"] == 256
    assert 0 < one["remaining"] <= 10000
    assert one["logGroup"] == "/aws/lambda/dnfn" and one["logStream"] == env.stream
    assert one["trace"] == trace
    assert one["identity"] is None and one["client"] is None
    assert two["client"] == "app/v/Android"
    assert one["greeting"] == "hi"
    assert one["cwd"] == one["taskRoot"]
    assert one["event"] == {"n": 1} and two["event"] == {"n": 2.5, "list": [True, None, "x"]}
    lines = first.log_lines
    assert lines[0] == "START RequestId: a Version: $LATEST"
    body = body_lines(first)
    assert re.fullmatch(TIMESTAMP + r"\ta\tinfo\tstdout 1", body[0]), body
    assert re.fullmatch(TIMESTAMP + r"\ta\tfail\tstderr 1", body[1]), body
    assert re.fullmatch("raw write\\|" + TIMESTAMP + r"\ta\tinfo\t", body[2]), body  # Write is raw
    assert re.fullmatch(TIMESTAMP + r"\ta\tinfo\tlogger line one\rline two", body[3]), body  # one event
    assert re.fullmatch(TIMESTAMP + r"\ta\twarn\tleveled warn", body[4]), body
    assert re.fullmatch(TIMESTAMP + r"\ta\tstatic logger", body[5]), body  # LambdaLogger: no level
    assert len(body) == 6  # LogDebug is below the default minimum level
    assert lines[-2] == "END RequestId: a"
    assert lines[-1].startswith("REPORT RequestId: a\tDuration: ") and "Init Duration" in lines[-1]
    assert "Init Duration" not in second.log_lines[-1]
    assert first.log_lines[0] == "START RequestId: a Version: $LATEST"
    init_start = env.all_lines[0]
    assert init_start.startswith("INIT_START Runtime Version: dotnet:8.mono"), init_start


def test_poco_in_and_out(make_env):
    env = make_env(handler="Fn::Example.Orders::Handle")
    order = {
        "id": "o-1",
        "COUNT": 7,
        "big": 12345678901234,
        "ratio": 0.25,
        "gift": True,
        "price": 19.99,
        "size": 1,
        "items": [{"sku": "a", "qty": 2, "unknown": 1}, {"sku": "b"}],
        "stock": {"a": 1, "b": 2},
        "numbers": [1, 2, 3],
        "when": "2024-05-06T07:08:09.5Z",
        "ref": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "note": "a public field",
        "ignored": {"deep": [1]},
    }
    (out,) = invoke_all(env, invocation("p", json.dumps(order).encode()))
    assert not out.function_error, out.payload
    assert json.loads(out.payload) == {
        "Id": "o-1",
        "Count": 7,
        "Big": 12345678901234,
        "Ratio": 0.25,
        "Gift": True,
        "Price": 19.99,
        "Size": 1,
        "Items": [{"Sku": "a", "Qty": 2}, {"Sku": "b", "Qty": 0}],
        "Stock": {"a": 1, "b": 2},
        "Numbers": [1, 2, 3],
        "When": "2024-05-06T07:08:09.5Z",
        "Ref": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "Summary": "o-1x7",
        "Note": "a public field",
    }  # names as declared, nulls left out (DefaultLambdaJsonSerializer)


@pytest.mark.parametrize(
    ("handler", "payload", "expected"),
    [
        ("Fn::Example.Simple::Upper", b'"shout"', b'"SHOUT"'),
        ("Fn::Example.Simple::Twice", b"21", b"42"),
        ("Fn::Example.Simple::Echo", b'{"raw": [1, 2]}', b'[{"raw": [1, 2]},1]'),
        ("Fn::Example.Simple::Later", b'{"a": 1, "b": 2}', b'{"a":10,"b":20}'),
        ("Fn::Example.Simple::Quiet", b"{}", b""),
        ("Fn::Example.Simple::Nothing", b"{}", b""),
        ("Fn::Example.Simple::Anonymous", b"{}", b'{"Name":"anon","Values":[1.5,2]}'),
        ("Fn::Example.UsesLib::Handle", b'"dependency"', b'"DEPENDENCY!"'),
        ("Fn::Example.Simple::System.String Upper(System.String)", b'"by signature"', b'"BY SIGNATURE"'),
        ("Fn::Example.Custom::Handle", b"raw text", b"CUSTOM:RAW TEXT!"),  # the method's LambdaSerializer
        (
            "Fn::Example.Orders::Rename",
            b'{"first_name": "Ann", "secret": "in", "at": 86400}',  # a number is seconds since the epoch
            b'{"first_name":"Ann","At":"1970-01-02T00:00:00Z"}',
        ),
        ("Fn::Example.Custom::Camel", b'{"sku": "a", "qty": 1}', b'{"sku":"a","qty":2}'),
    ],
)
def test_handler_shapes(make_env, handler, payload, expected):
    env = make_env(handler=handler)
    (out,) = invoke_all(env, invocation("s", payload))
    assert not out.function_error, out.payload
    assert out.payload == expected


def test_json_log_format(make_env):
    env = make_env(log_format="JSON", application_log_level="DEBUG")
    (out,) = invoke_all(env, invocation("j", b'{"n": 3}'))
    assert not out.function_error, out.payload
    records = [json.loads(line) for line in body_lines(out) if line.startswith("{")]
    by_message = {r["message"]: r for r in records}
    assert by_message["stdout 3"]["level"] == "Information" and by_message["stdout 3"]["requestId"] == "j"
    assert by_message["stderr 3"]["level"] == "Error"
    assert by_message["leveled warn"]["level"] == "Warning"
    assert by_message["hidden below Information"]["level"] == "Debug"  # DEBUG is the minimum now
    assert re.fullmatch(TIMESTAMP, by_message["static logger"]["timestamp"])


def test_a_packaged_amazon_lambda_core_is_ignored(make_env, dotnet_runtime):
    def extra(code_dir):  # as `dotnet publish` leaves it: the API assembly beside the function's
        for api in dotnet.api_assemblies(dotnet_runtime):
            shutil.copy(api, code_dir / api.name)
            (code_dir / api.name).write_bytes(b"MZ not really an assembly")

    env = make_env(extra, handler="Fn::Example.Orders::Handle")
    (out,) = invoke_all(env, invocation("k", b'{"id": "x"}'))
    assert not out.function_error, (out.payload, env.all_lines)
    assert json.loads(out.payload)["Id"] == "x"


# ---- errors ---------------------------------------------------------------------------------------------


def test_unhandled_exception_shape_and_log(make_env):
    env = make_env(handler="Fn::Example.Errors::Divide")
    (out,) = invoke_all(env, invocation("e", b'{"zero": 0}'))
    assert out.function_error and out.status == "success"
    text = out.payload.decode()
    body = json.loads(text)
    assert list(body) == ["errorType", "errorMessage", "stackTrace"]
    assert body["errorType"] == "DivideByZeroException"
    assert body["errorMessage"] == "Attempted to divide by zero."
    assert re.fullmatch(
        r"at Example\.Errors\.Divide\(Dictionary`2 ev, ILambdaContext context\) in .*/Fn\.cs:line \d+",
        body["stackTrace"][0],
    ), body
    assert len(body["stackTrace"]) == 1  # the runtime's own frames are left out
    assert text.startswith('{\n  "errorType": "DivideByZeroException",\n  "errorMessage": ')  # AWS's layout
    logged = [line for line in body_lines(out) if "\tfail\tSystem.DivideByZeroException" in line]
    assert len(logged) == 1 and re.fullmatch(
        TIMESTAMP
        + r"\te\tfail\tSystem\.DivideByZeroException: Attempted to divide by zero\.\r   at Example\."
        r"Errors\.Divide\(.*",
        logged[0],
    )


def test_exception_with_a_cause(make_env):
    env = make_env(handler="Fn::Example.Errors::Wrapped")
    (out,) = invoke_all(env, invocation("c"))
    body = json.loads(out.payload)
    assert body["errorType"] == "InvalidOperationException" and body["errorMessage"] == "could not parse"
    assert body["cause"]["errorType"] == "FormatException"
    assert any(frame.startswith("at Example.Errors.Wrapped()") for frame in body["stackTrace"])
    assert '"cause":   {\n' in out.payload.decode()  # AWS's writer indents the nested object so


def test_aggregate_exception_has_causes(make_env):
    env = make_env(handler="Fn::Example.Errors::Several")
    (out,) = invoke_all(env, invocation("g"))
    body = json.loads(out.payload)
    assert body["errorType"] == "AggregateException"
    assert body["cause"]["errorType"] == "InvalidOperationException"
    assert [c["errorType"] for c in body["causes"]] == ["InvalidOperationException", "ArgumentException"]
    assert [c["errorMessage"] for c in body["causes"]] == ["one", "two"]


def test_async_exception(make_env):
    env = make_env(handler="Fn::Example.Errors::AsyncFail")
    (out,) = invoke_all(env, invocation("x"))
    body = json.loads(out.payload)
    assert body["errorType"] == "ArgumentException" and body["errorMessage"] == "bad argument"
    assert body["stackTrace"][0].startswith("at Example.Errors.AsyncFail() in "), body


def test_bad_input_is_a_serializer_error(make_env):
    env = make_env(handler="Fn::Example.Orders::Handle")
    (out,) = invoke_all(env, invocation("b", b'{"count": {"not": "a number"}}'))
    body = json.loads(out.payload)
    assert body["errorType"] == "JsonSerializerException"
    assert body["errorMessage"].startswith(
        "Error converting the Lambda event JSON payload to type Example.Order: "
        "The JSON value could not be converted to System.Int32. Path: $.count"
    )
    assert body["cause"]["errorType"] == "JsonException"


def test_a_string_handler_needs_a_json_string(make_env):
    env = make_env(handler="Fn::Example.Simple::Upper")
    (out,) = invoke_all(env, invocation("q", b'{"not": "a string"}'))
    body = json.loads(out.payload)
    assert body["errorType"] == "JsonSerializerException"
    assert body["errorMessage"].startswith(
        "Error converting the Lambda event JSON payload to a string. JSON strings must be quoted, for "
        'example "Hello World" in order to be converted to a string: '
    )


def test_timeout(make_env):
    env = make_env(handler="Fn::Example.Errors::Sleep", timeout=1)
    started = time.monotonic()
    (out,) = invoke_all(env, invocation("t"))
    assert time.monotonic() - started < 30
    assert out.status == "timeout"
    assert json.loads(out.payload) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "RequestId: t Error: Task timed out after 1.00 seconds",
    }
    assert any(line.endswith("\tinfo\tgoing to sleep") for line in out.log_lines)


def test_environment_exit_is_runtime_exit_error(make_env):
    env = make_env(handler="Fn::Example.Errors::Exit")
    (out,) = invoke_all(env, invocation("x"))
    assert "bye without a newline" in out.log_lines
    assert json.loads(out.payload) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": "RequestId: x Error: Runtime exited with error: exit status 3",
    }


# ---- init errors (as AWS's .NET runtime reports them) ------------------------------------------------------


def init_error(make_env, handler):
    env = make_env(handler=handler)
    first, second = invoke_all(env, invocation("i1"), invocation("i2"))
    assert first.function_error and second.function_error
    assert first.payload == second.payload  # answered to every invoke
    report = next(line for line in env.all_lines if line.startswith("INIT_REPORT"))
    assert report.endswith("\tPhase: init\tStatus: error\tError Type: Runtime.Unknown"), report
    return json.loads(first.payload), env.all_lines


def test_assembly_not_found(make_env):
    body, lines = init_error(make_env, "Nope::Example.Ctx::Handle")
    assert body["errorType"] == "LambdaValidationException"
    assert body["errorMessage"] == (
        "Could not find the specified handler assembly with the file name 'Nope, Culture=neutral, "
        "PublicKeyToken=null'. The assembly should be located in the root of your uploaded .zip file."
    )
    assert any(
        "\tfail\tAmazon.Lambda.RuntimeSupport.ExceptionHandling.LambdaValidationException: Could not find"
        in line
        for line in lines
    )


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        (
            "Fn::Example.Nope::Handle",
            "LambdaValidationException",
            "Unable to load type 'Example.Nope' from assembly 'Fn'.",
        ),
        (
            "Fn::Example.Ctx::Nope",
            "LambdaValidationException",
            "Unable to find method 'Nope' in type 'Example.Ctx' from assembly 'Fn': Found no methods "
            "matching method name 'Nope'.",
        ),
        (
            "Fn::Example.Ctx",
            "LambdaValidationException",
            "Invalid lambda function handler: 'Fn::Example.Ctx'. The valid format is "
            "'ASSEMBLY::TYPE::METHOD'.",
        ),
        (
            "Fn::Example.TooMany::Handle",
            "LambdaValidationException",
            "Method 'Handle' of type 'Example.TooMany' is not supported: the method has more than 2 "
            "parameters.",
        ),
        (
            "Fn::Example.NotContext::Handle",
            "LambdaValidationException",
            "Method 'Handle' of type 'Example.NotContext' is not supported: the method has 2 parameters, "
            "but the second parameter is not of type 'Amazon.Lambda.Core.ILambdaContext'.",
        ),
        (
            "Fn::Example.BadCtor::Handle",
            "TargetInvocationException",
            "Exception has been thrown by the target of an invocation.",
        ),
        ("Fn::Example.BadStatic::Handle", "TypeInitializationException", None),
    ],
)
def test_init_errors(make_env, handler, error_type, message):
    body, _ = init_error(make_env, handler)
    assert body["errorType"] == error_type, body
    if message is not None:
        assert body["errorMessage"] == message
    if handler.endswith("BadCtor::Handle"):
        assert body["cause"]["errorType"] == "InvalidOperationException"
        assert body["cause"]["errorMessage"] == "constructor failed"
    if handler.endswith("BadStatic::Handle"):
        assert body["errorMessage"] == "The type initializer for 'Example.BadStatic' threw an exception."
        assert body["cause"]["errorType"] == "FormatException"


def test_overloads_need_a_signature(make_env):
    body, _ = init_error(make_env, "Fn::Example.Overloaded::Handle")
    assert body["errorMessage"].startswith(
        "The method 'Handle' in type 'Example.Overloaded' appears to have a number of overloads. To call "
        "this method please specify a complete method signature. Possible candidates are:\n"
    )
    assert "System.String Handle(Int32)" in body["errorMessage"]


# ---- discovery and the build ------------------------------------------------------------------------------


def test_runtime_ids_and_build(dotnet_runtime):
    found = dotnet.DotnetFamily().discover({})
    assert set(found) == {"dotnet8", "dotnet10", "dotnet6"}
    assert found["dotnet8"].bootstrap_dir == dotnet_runtime.bootstrap_dir  # built once, reused
    names = {p.name for p in dotnet_runtime.bootstrap_dir.iterdir()}
    assert {
        "bootstrap.exe",
        "Amazon.Lambda.Core.dll",
        "Amazon.Lambda.Serialization.SystemTextJson.dll",
    } <= names
    assert Path(dotnet_runtime.executable).name.startswith("mono")
    assert not dotnet_runtime.executable.endswith("/mcs")


def test_runtimes_setting_maps_an_id_to_a_mono(dotnet_runtime, tmp_path):
    prefix = Path(dotnet_runtime.executable).parent.parent
    found = dotnet.DotnetFamily().discover({"dotnet8": str(prefix), "dotnet6": str(tmp_path / "no-mono")})
    assert found["dotnet8"].executable == dotnet_runtime.executable
    assert "dotnet6" not in found  # a setting that names no Mono is ignored, not replaced by another


def test_absent_mono_offers_nothing(monkeypatch):
    monkeypatch.setattr(dotnet, "installed", lambda: None)
    assert dotnet.DotnetFamily().discover({}) == {}

"""Ruby functions (ruby3.2 / ruby3.3 / ruby3.4 ids) through boto3 against ``shoal server``.

The ids run on the best installed Ruby 3 (docs/runtimes/ruby.md); the behaviour checked is the AWS Ruby
runtime interface client's: handler forms, results, the ``Function<Class>`` / ``Init<Class>`` error shapes,
context, environment, ``puts`` and ``Logger`` lines, warm reuse, timeouts, init errors. Spec §2.4, §4, §5.2.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from conftest import unique_name

from shoal.runtimes.ruby import RubyFamily

RUNTIME = "ruby3.3"
pytestmark = pytest.mark.skipif(
    RUNTIME not in RubyFamily().discover({}),
    reason="no Ruby 3 interpreter on this host: apt-get install -y ruby",
)
REPORT_RE = re.compile(r"REPORT RequestId: (\S+)\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\t.*")
LOGGER_RE = r"I, \[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6} #\d+\]  INFO %s -- : %s"


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


def ruby_function(
    make_function: Any, files: dict[str, str], handler: str = "function.handler", **kw: Any
) -> str:
    name = unique_name("ruby")
    make_function(name, files, handler, RUNTIME, **kw)
    return name


FUNCTION = """\
COUNT = [0]
puts "init line"

def handler(event:, context:)
  COUNT[0] += 1
  puts "first\\nsecond"
  Logger.new($stdout).info("logged")
  {
    "count" => COUNT[0],
    "event" => event,
    "request_id" => context.aws_request_id,
    "function_name" => context.function_name,
    "function_version" => context.function_version,
    "invoked_function_arn" => context.invoked_function_arn,
    "memory_limit_in_mb" => context.memory_limit_in_mb,
    "log_group_name" => context.log_group_name,
    "log_stream_name" => context.log_stream_name,
    "remaining" => context.get_remaining_time_in_millis,
    "deadline_ms" => context.deadline_ms,
    "client_context" => context.client_context,
    "env" => ENV.to_h.slice("AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION", "MY_VAR",
                            "_HANDLER"),
  }
end
"""


def test_result_context_env_logs_and_warm_reuse(lambda_client: Any, make_function: Any) -> None:
    name = ruby_function(
        make_function, {"function.rb": FUNCTION}, Environment={"Variables": {"MY_VAR": "e2e"}}, MemorySize=256
    )
    client_context = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    resp, payload, lines = invoke(lambda_client, name, {"n": 1}, ClientContext=client_context)
    rid = rid_of(resp)
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp, payload
    out = json.loads(payload)
    assert out["count"] == 1 and out["event"] == {"n": 1}
    assert out["request_id"] == rid
    assert (out["function_name"], out["function_version"]) == (name, "$LATEST")
    assert out["invoked_function_arn"].endswith(f":function:{name}")
    assert out["memory_limit_in_mb"] == "256"
    assert out["log_group_name"] == f"/aws/lambda/{name}"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", out["log_stream_name"])
    assert 0 < out["remaining"] <= 3000 and out["deadline_ms"] > 0
    assert out["client_context"]["custom"] == {"k": "v"}
    assert out["env"] == {
        "AWS_EXECUTION_ENV": "AWS_Lambda_ruby3.3",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_REGION": "us-east-1",
        "MY_VAR": "e2e",
        "_HANDLER": "function.handler",
    }
    body = body_lines(lines, rid)
    assert body[0] == "first\rsecond"  # one `puts`, one log event
    assert re.fullmatch(LOGGER_RE % (re.escape(rid), "logged"), body[1]), body[1]
    assert REPORT_RE.fullmatch(lines[-1]) and rid in lines[-1] and "Init Duration" in lines[-1]

    _, payload2, lines2 = invoke(lambda_client, name, ["warm"])
    out2 = json.loads(payload2)
    assert out2["count"] == 2 and out2["event"] == ["warm"]  # the same environment, its state kept
    assert out2["log_stream_name"] == out["log_stream_name"]
    assert "Init Duration" not in lines2[-1]


MODULE_CLASS = """\
module LambdaFunctions
  class Handler
    def self.process(event:, context:)
      { "nil" => nil, "string" => "text", "hash" => { "a" => [1, 2] } }.fetch(event["kind"])
    end
  end
end
"""


def test_module_class_handler_and_return_values(lambda_client: Any, make_function: Any) -> None:
    name = ruby_function(
        make_function, {"source.rb": MODULE_CLASS}, "source.LambdaFunctions::Handler.process"
    )
    got = {kind: invoke(lambda_client, name, {"kind": kind})[1] for kind in ("nil", "string", "hash")}
    assert got == {"nil": b"null", "string": b'"text"', "hash": b'{"a":[1,2]}'}


ERRORS = """\
def first(value)
  [1].first(value)
end

def handler(event:, context:)
  return Dir.pwd if event["where"]
  return nil.upcase if event["nomethod"]
  sleep 10 if event["sleep"]
  first(event["value"])
end
"""


def test_function_error_shape_and_log(lambda_client: Any, make_function: Any) -> None:
    name = ruby_function(make_function, {"function.rb": ERRORS})
    task_root = json.loads(invoke(lambda_client, name, {"where": True})[1])
    resp, payload, lines = invoke(lambda_client, name, {"value": "x"})
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    assert json.loads(payload) == {
        "errorMessage": "no implicit conversion of String into Integer",
        "errorType": "Function<TypeError>",
        "stackTrace": [
            f"{task_root}/function.rb:2:in `first'",
            f"{task_root}/function.rb:2:in `first'",
            f"{task_root}/function.rb:9:in `handler'",
        ],
    }
    body = body_lines(lines, rid_of(resp))
    assert body[0] == "Error raised from handler method"
    assert json.loads(body[1].replace("\r", "\n")) == json.loads(payload)
    assert json.loads(invoke(lambda_client, name, {"value": 1})[1]) == [1]  # still the same runtime


def test_critical_error_reports_function_error(lambda_client: Any, make_function: Any) -> None:
    name = ruby_function(make_function, {"function.rb": ERRORS})
    resp, payload, lines = invoke(lambda_client, name, {"nomethod": True})
    assert resp["FunctionError"] == "Unhandled"
    got = json.loads(payload)
    assert (got["errorType"], got["errorMessage"]) == (
        "Function<NoMethodError>",
        "undefined method `upcase' for nil:NilClass",
    )
    assert body_lines(lines, rid_of(resp))[0] == "Critical exception from handler"


def test_invoke_after_a_critical_error_gets_a_fresh_runtime(lambda_client: Any, make_function: Any) -> None:
    name = ruby_function(make_function, {"function.rb": ERRORS})
    assert invoke(lambda_client, name, {"nomethod": True})[0]["FunctionError"] == "Unhandled"
    resp, payload, lines = invoke(lambda_client, name, {"value": 1})
    assert "FunctionError" not in resp, payload
    assert json.loads(payload) == [1]
    assert "Init Duration" in lines[-1]  # a new runtime


def test_timeout(lambda_client: Any, make_function: Any) -> None:
    name = ruby_function(make_function, {"function.rb": ERRORS}, Timeout=1)
    resp, payload, lines = invoke(lambda_client, name, {"sleep": True})
    rid = rid_of(resp)
    assert resp["FunctionError"] == "Unhandled"
    assert json.loads(payload) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {rid} Error: Task timed out after 1.00 seconds",
    }
    assert lines[-1].endswith("\tStatus: timeout")


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        (
            {"function.rb": "def handler(event:, context:)\n  if true\nend\n"},
            "function.handler",
            "Init<SyntaxError>",
            r".*/function\.rb:3: syntax error, unexpected end-of-input, expecting `end'",
        ),
        (
            {"function.rb": "X = 1\n"},
            "missing.handler",
            "Init<LoadError>",
            r"cannot load such file -- missing",
        ),
        (
            {"function.rb": "X = 1\n"},
            "function",
            "Init<ArgumentError>",
            r"Invalid handler \[\"function\"\], .*",
        ),
        ({"function.rb": "raise IOError, 'at load'\n"}, "function.handler", "Init<IOError>", "at load"),
    ],
    ids=["syntax-error", "missing-file", "bad-handler", "raise-at-load"],
)
def test_init_errors(
    lambda_client: Any, make_function: Any, files: dict[str, str], handler: str, error_type: str, message: str
) -> None:
    name = ruby_function(make_function, files, handler)
    resp, payload, lines = invoke(lambda_client, name)
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled", payload
    got = json.loads(payload)
    assert list(got) == ["errorMessage", "errorType", "stackTrace"]
    assert got["errorType"] == error_type
    assert re.fullmatch(message, got["errorMessage"]), got["errorMessage"]
    assert "\tStatus: error\tError Type: " in lines[-1]


def test_missing_method_is_reported_at_invoke(lambda_client: Any, make_function: Any) -> None:
    name = ruby_function(make_function, {"function.rb": "X = 1\n"}, "function.nope")
    resp, payload, _ = invoke(lambda_client, name)
    assert resp["FunctionError"] == "Unhandled"
    got = json.loads(payload)
    assert got["errorType"] == "Function<NoMethodError>"
    assert got["errorMessage"].startswith("undefined method `nope' for #<LambdaHandler")


def test_json_log_format(lambda_client: Any, make_function: Any) -> None:
    source = (
        "LOG = Logger.new($stdout)\n"
        "def handler(event:, context:)\n  LOG.debug('hidden')\n  LOG.warn('careful')\n  'ok'\nend\n"
    )
    name = ruby_function(
        make_function,
        {"function.rb": source},
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "INFO"},
    )
    resp, payload, lines = invoke(lambda_client, name)
    assert payload == b'"ok"'
    records = [json.loads(line) for line in lines if line.startswith('{"timestamp"')]
    assert [(r["level"], r["message"], r["requestId"]) for r in records] == [
        ("WARN", "careful", rid_of(resp))
    ]

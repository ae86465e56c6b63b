"""The Ruby runtime: real execution environments on the host's Ruby, both sandbox backends.

Every ``ruby3.x`` id runs on the best installed Ruby 3 (Debian 12 has 3.1); these tests run whatever
``RubyFamily`` discovers for ``ruby3.3`` and check the AWS Ruby runtime interface client's behaviour: handler
forms, return values, error shapes, context, logs, warm reuse, timeouts, init errors.
"""

from __future__ import annotations

import asyncio
import json
import re
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from shoal.core.types import FunctionConfig
from shoal.environments.environment import Environment, Invocation, Outcome, Settings
from shoal.logs import format as fmt
from shoal.runtimes.ruby import RubyFamily, choose, installed, probe
from shoal.sandbox import namespace
from shoal.sandbox.namespace import NamespaceBackend
from shoal.sandbox.process import ProcessBackend
from tests.function_configs import function_config

RUNTIME_ID = "ruby3.3"
RUNTIMES = RubyFamily().discover({})
RUNTIME = RUNTIMES.get(RUNTIME_ID)
NS_OK, NS_WHY = namespace.available()
ARN = "arn:aws:lambda:us-east-1:123456789012:function:f"

pytestmark = pytest.mark.skipif(
    RUNTIME is None, reason="no Ruby 3 interpreter on this host: apt-get install -y ruby"
)

BACKENDS = [
    pytest.param(ProcessBackend, id="process"),
    pytest.param(
        NamespaceBackend,
        id="namespace",
        marks=pytest.mark.skipif(not NS_OK, reason=f"namespace sandbox unavailable on this host: {NS_WHY}"),
    ),
]


def config(**kw: Any) -> FunctionConfig:
    return function_config(**{"runtime": RUNTIME_ID, "handler": "function.handler", **kw})


class Logs:
    """Every log event the environment emits (the stream, in order), INIT phase included."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def emit(self, account: str, group: str, stream: str, timestamp_ms: int, message: str) -> None:
        self.lines.append(message)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Any:
    return request.param()


@pytest.fixture
def make_env(tmp_path: Path, backend: Any) -> Any:
    made: list[tuple[Environment, Logs]] = []

    def make(files: dict[str, str], **kw: Any) -> tuple[Environment, Logs]:
        code = tmp_path / f"code{len(made)}"
        for name, source in files.items():
            path = code / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(source)
        for path in [code, *code.rglob("*")]:  # readable by the namespace backend's unprivileged uid
            path.chmod(path.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0))
        logs = Logs()
        assert RUNTIME is not None
        env = Environment(
            config(**kw),
            RUNTIME,
            backend,
            code,
            tmp_path / "envs",
            logs.emit,
            Settings(region="us-east-1", init_timeout=10, endpoint="http://127.0.0.1:1"),
        )
        made.append((env, logs))
        return env, logs

    yield make
    for env, _ in made:  # the fixture ends every process it started
        if env.process is not None and env.process.returncode is None:
            env.process.kill()
        if env.process is not None:
            _wait_gone(env.process.pid)


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return
        except OSError:
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} still running")


def invocation(rid: str, event: Any = None, **kw: Any) -> Invocation:
    return Invocation(
        request_id=rid, payload=json.dumps(event if event is not None else {}).encode(), invoked_arn=ARN, **kw
    )


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


async def invoke_all(env: Environment, *invocations: Invocation, shutdown: bool = True) -> list[Outcome]:
    await env.start()
    outs = [await env.invoke(inv) for inv in invocations]
    if shutdown:
        await env.shutdown()
    return outs


async def wait_dead(env: Environment, timeout: float = 10.0) -> None:
    """Wait for the runtime to exit by itself. The environment freezes (SIGSTOP) its process once the runtime
    has answered; a runtime that exits after answering would finish exiting only when thawed."""
    assert env.process is not None
    env.process.thaw()
    deadline = time.monotonic() + timeout
    while env.alive and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert not env.alive, "the runtime should have exited"


def between_start_and_end(out: Outcome) -> list[str]:
    lines = out.log_lines
    start = next(i for i, line in enumerate(lines) if line.startswith("START RequestId: "))
    end = next(i for i, line in enumerate(lines) if line.startswith("END RequestId: "))
    return lines[start + 1 : end]


# ---- handlers, results, context, logs, warm reuse ----------------------------------------------------------

FUNCTION = """\
COUNT = [0]
$booted = Process.clock_gettime(Process::CLOCK_MONOTONIC)
puts "init line"

def handler(event:, context:)
  COUNT[0] += 1
  puts "two\\nlines"
  print "raw print\\n"
  $stdout.write("raw write\\n")
  Logger.new($stdout).info("via logger")
  {
    "count" => COUNT[0],
    "event" => event,
    "self" => self.class.name,
    "ctx" => {
      "aws_request_id" => context.aws_request_id,
      "function_name" => context.function_name,
      "function_version" => context.function_version,
      "invoked_function_arn" => context.invoked_function_arn,
      "memory_limit_in_mb" => context.memory_limit_in_mb,
      "log_group_name" => context.log_group_name,
      "log_stream_name" => context.log_stream_name,
      "deadline_ms" => context.deadline_ms,
      "remaining" => context.get_remaining_time_in_millis,
      "identity" => context.identity,
      "client_context" => context.client_context,
    },
    "env" => ENV.to_h.slice("AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT", "GEM_PATH",
                            "RUBYLIB", "_HANDLER", "_X_AMZN_TRACE_ID", "MY_VAR"),
    "load_path" => $LOAD_PATH.first(4),
    "cwd" => Dir.pwd,
    "request_id_global" => $_global_aws_request_id,
    "gems_loaded" => $LOADED_FEATURES.any? { |f| f.end_with?("/rubygems.rb") },
  }
end
"""


def test_file_method_context_env_logs_and_warm_reuse(make_env: Any) -> None:
    env, logs = make_env({"function.rb": FUNCTION}, environment={"MY_VAR": "mine"}, memory_size=256)
    client_context = json.dumps({"custom": {"k": "v"}, "env": {}, "client": {}})
    before = int(time.time() * 1000)
    first, second = run(
        invoke_all(
            env,
            invocation(
                "req-1", {"n": 1}, client_context=client_context, trace_id="Root=1-abc;Parent=def;Sampled=1"
            ),
            invocation("req-2", [1, "two", None]),
        )
    )
    one, two = json.loads(first.payload), json.loads(second.payload)
    assert (one["count"], two["count"]) == (1, 2)  # module state survives between invokes
    assert one["event"] == {"n": 1} and two["event"] == [1, "two", None]
    assert one["self"] == "LambdaHandler"  # a top-level handler runs with AWS's handler object as self
    task_root = one["cwd"]
    ctx = one["ctx"]
    assert ctx["aws_request_id"] == "req-1" and two["ctx"]["aws_request_id"] == "req-2"
    assert ctx["function_name"] == "f" and ctx["function_version"] == "$LATEST"
    assert ctx["invoked_function_arn"] == ARN
    assert ctx["memory_limit_in_mb"] == "256"  # a string, as on AWS
    assert ctx["log_group_name"] == "/aws/lambda/f" and ctx["log_stream_name"] == env.stream
    assert before + 2000 < ctx["deadline_ms"] < before + 60_000
    assert 0 < ctx["remaining"] <= 3000
    assert ctx["identity"] is None
    assert ctx["client_context"] == {"custom": {"k": "v"}, "env": {}, "client": {}}
    assert two["ctx"]["client_context"] is None
    assert one["env"]["AWS_EXECUTION_ENV"] == "AWS_Lambda_ruby3.3"
    assert one["env"]["_HANDLER"] == "function.handler" and one["env"]["MY_VAR"] == "mine"
    assert one["env"]["LAMBDA_TASK_ROOT"] == task_root
    assert one["env"]["_X_AMZN_TRACE_ID"] == "Root=1-abc;Parent=def;Sampled=1"
    assert one["env"]["RUBYLIB"] == f"{task_root}:{task_root}/lib:/opt/ruby/lib"
    assert one["env"]["GEM_PATH"].startswith(f"{task_root}/vendor/bundle/ruby/")
    assert "/opt/ruby/gems/3.3.0" in one["env"]["GEM_PATH"].split(":")
    assert one["load_path"][:3] == [task_root, f"{task_root}/lib", "/opt/ruby/lib"]
    assert one["request_id_global"] == "req-1"
    assert one["gems_loaded"] is False  # RubyGems stays unloaded until something needs it

    assert "init line" in logs.lines  # INIT-phase output goes to the stream before START
    body = between_start_and_end(first)
    assert body[:3] == ["two\rlines", "raw print", "raw write"]  # one `puts` = one event; print is raw
    assert re.fullmatch(
        r"I, \[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6} #\d+\]  INFO req-1 -- : via logger", body[3]
    ), body[3]
    assert first.log_lines[0] == "START RequestId: req-1 Version: $LATEST"
    assert first.log_lines[-2] == "END RequestId: req-1"
    assert first.log_lines[-1].startswith("REPORT RequestId: req-1\tDuration: ")
    assert "Init Duration" in first.log_lines[-1] and "Init Duration" not in second.log_lines[-1]


MODULE_CLASS = """\
module LambdaFunctions
  class Handler
    def self.process(event:, context:)
      case event["kind"]
      when "nil" then nil
      when "string" then "a string"
      when "number" then 42
      when "array" then [1, { "a" => nil }]
      when "unicode" then { "s" => event["s"] + " ✓" }
      when "io" then StringIO.new("raw bytes, not JSON")
      else { "hash" => true, "sym" => :value }
      end
    end
  end
end
"""


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ({"kind": "nil"}, b"null"),
        ({"kind": "string"}, b'"a string"'),
        ({"kind": "number"}, b"42"),
        ({"kind": "array"}, b'[1,{"a":null}]'),
        ({"kind": "hash"}, b'{"hash":true,"sym":"value"}'),
        ({"kind": "unicode", "s": "héllo ☃"}, '{"s":"héllo ☃ ✓"}'.encode()),
        ({"kind": "io"}, b"raw bytes, not JSON"),
    ],
)
def test_module_class_method_and_return_values(make_env: Any, event: Any, payload: bytes) -> None:
    env, _ = make_env({"function.rb": MODULE_CLASS}, handler="function.LambdaFunctions::Handler.process")
    (out,) = run(invoke_all(env, invocation("r", event)))
    assert not out.function_error, out.payload
    assert out.payload == payload


def test_handler_in_lib_and_gems_from_vendor_bundle(make_env: Any) -> None:
    assert RUNTIME is not None
    abi = RUNTIME.env["GEM_PATH"].split(":")[0].rsplit("/", 1)[1]  # the interpreter's gem ABI, e.g. 3.1.0
    files = {
        "function.rb": (
            "require 'helper'\n"
            "def handler(event:, context:)\n"
            "  require 'shoalgem'\n  require 'othergem'\n"
            "  require 'bundler'\n"
            "  [Helper::NAME, ShoalGem::NAME, OtherGem::NAME, Gem.loaded_specs.key?('shoalgem'),\n"
            "   Bundler::VERSION.is_a?(String), URI('http://h/p').path]\n"
            "end\n"
        ),
        "lib/helper.rb": "module Helper\n  NAME = 'helper'\nend\n",
    }
    for gem, where in (("shoalgem", abi), ("othergem", "3.3.0")):  # the interpreter's and the id's directory
        files[f"vendor/bundle/ruby/{where}/gems/{gem}-1.0/lib/{gem}.rb"] = (
            f"module {gem.capitalize().replace('gem', 'Gem')}\n  NAME = '{gem}'\nend\n"
        )
        files[f"vendor/bundle/ruby/{where}/specifications/{gem}-1.0.gemspec"] = (
            "Gem::Specification.new do |s|\n"
            f"  s.name = '{gem}'\n  s.version = '1.0'\n  s.summary = 'test'\n  s.authors = ['shoal']\n"
            f"  s.files = ['lib/{gem}.rb']\n  s.require_paths = ['lib']\n"
            "end\n"
        )
    env, _ = make_env(files)
    (out,) = run(invoke_all(env, invocation("g")))
    assert json.loads(out.payload) == ["helper", "shoalgem", "othergem", True, True, "/p"], out.payload


def test_output_survives_a_handler_that_replaces_stdout(make_env: Any) -> None:
    env, _ = make_env(
        {
            "function.rb": (
                "def handler(event:, context:)\n"
                "  $stdout = StringIO.new\n  puts 'still logged'\n  STDOUT.close if event['close']\n  'ok'\n"
                "end\n"
            )
        }
    )
    outs = run(invoke_all(env, invocation("a", {"close": True}), invocation("b")))
    assert [o.payload for o in outs] == [b'"ok"', b'"ok"']
    assert between_start_and_end(outs[1]) == ["still logged"]


def test_json_log_format_and_level(make_env: Any) -> None:
    env, _ = make_env(
        {
            "function.rb": (
                "LOG = Logger.new($stdout, progname: 'app')\n"
                "def handler(event:, context:)\n"
                "  LOG.debug('hidden')\n  LOG.info('shown')\n"
                "  begin\n    raise ArgumentError, 'bad arg'\n  rescue => e\n    LOG.error(e)\n  end\n"
                "  puts 'plain puts'\n  nil\n"
                "end\n"
            )
        },
        log_format="JSON",
        application_log_level="INFO",
    )
    (out,) = run(invoke_all(env, invocation("j")))
    body = between_start_and_end(out)
    info, error = json.loads(body[0]), json.loads(body[1])
    assert list(info) == ["timestamp", "level", "message", "requestId", "logger"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", info["timestamp"])
    assert (info["level"], info["message"], info["requestId"], info["logger"]) == (
        "INFO",
        "shown",
        "j",
        "app",
    )
    assert (error["level"], error["message"], error["errorType"], error["errorMessage"]) == (
        "ERROR",
        "bad arg",
        "ArgumentError",
        "bad arg",
    )
    assert re.fullmatch(r".*/function\.rb:handler:6", error["location"]), error["location"]
    assert body[2:] == ["plain puts"]


# ---- errors ----------------------------------------------------------------------------------------------

ERRORS = """\
def first(value)
  [1].first(value)
end

def handler(event:, context:)
  return Dir.pwd if event["where"]
  return nil.upcase if event["nomethod"]
  exit 3 if event["exit"]
  first(event["value"])
end
"""


def test_handler_error_shape_and_log(make_env: Any) -> None:
    env, _ = make_env({"function.rb": ERRORS})
    where, out, after = run(
        invoke_all(
            env,
            invocation("w", {"where": True}),
            invocation("e", {"value": "x"}),
            invocation("f", {"value": 1}),
        )
    )
    task_root = json.loads(where.payload)
    assert out.function_error and out.status == "success"  # a function error, not a platform one
    assert (
        out.payload
        == json.dumps(
            {
                "errorMessage": "no implicit conversion of String into Integer",
                "errorType": "Function<TypeError>",
                "stackTrace": [
                    f"{task_root}/function.rb:2:in `first'",
                    f"{task_root}/function.rb:2:in `first'",
                    f"{task_root}/function.rb:9:in `handler'",
                ],
            },
            separators=(",", ":"),
        ).encode()
    )
    body = between_start_and_end(out)
    assert body[0] == "Error raised from handler method"
    assert json.loads(body[1].replace("\r", "\n")) == json.loads(out.payload)  # pretty JSON, one event
    assert '\r  "errorMessage": ' in body[1]
    assert json.loads(after.payload) == [1]  # an ordinary error leaves the runtime running


@pytest.mark.parametrize(
    ("event", "error_type", "message"),
    [
        ({"nomethod": True}, "Function<NoMethodError>", "undefined method `upcase' for nil:NilClass"),
        ({"exit": True}, "Function<SystemExit>", "exit"),
    ],
)
def test_critical_errors_end_the_runtime(make_env: Any, event: Any, error_type: str, message: str) -> None:
    env, _ = make_env({"function.rb": ERRORS})

    async def scenario() -> Outcome:
        (out,) = await invoke_all(env, invocation("c", event), shutdown=False)
        await wait_dead(env)  # AWS's client exits after reporting these (exit code -1)
        assert env.process is not None and env.process.returncode == 255
        await env.shutdown()
        return out

    out = run(scenario())
    got = json.loads(out.payload)
    assert (got["errorType"], got["errorMessage"]) == (error_type, message)
    assert between_start_and_end(out)[0] == "Critical exception from handler"


def test_missing_method_is_an_invoke_error_that_ends_the_runtime(make_env: Any) -> None:
    env, _ = make_env({"function.rb": "X = 1\n"}, handler="function.nope")

    async def scenario() -> Outcome:
        (out,) = await invoke_all(env, invocation("m"), shutdown=False)
        assert env.init_ms is not None and env._init_failure is None  # the file loaded: INIT succeeded
        await wait_dead(env)
        await env.shutdown()
        return out

    out = run(scenario())
    got = json.loads(out.payload)
    assert got["errorType"] == "Function<NoMethodError>"
    assert got["errorMessage"].startswith("undefined method `nope' for #<LambdaHandler")


def test_timeout(make_env: Any) -> None:
    env, _ = make_env({"function.rb": "def handler(event:, context:)\n  sleep 30\nend\n"}, timeout=1)
    started = time.monotonic()
    (out,) = run(invoke_all(env, invocation("t")))
    assert time.monotonic() - started < 20
    assert out.status == "timeout" and out.function_error
    assert json.loads(out.payload) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "RequestId: t Error: Task timed out after 1.00 seconds",
    }
    assert out.log_lines[-1].endswith("\tStatus: timeout")


INVALID_HANDLER = (
    'Invalid handler ["a", "b", "c", "d"], must be of form FILENAME.METHOD or FILENAME.CLASS.METHOD where '
    "FILENAME corresponds with an existing Ruby source file FILENAME.rb, CLASS is an optional module/class "
    "namespace and METHOD is a callable method. If using CLASS, METHOD must be a class-level method."
)


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message", "header_type"),
    [
        (
            {"function.rb": "def handler(event:, context:)\n  if true\nend\n"},
            "function.handler",
            "Init<SyntaxError>",
            re.compile(r".*/function\.rb:3: syntax error, unexpected end-of-input, expecting `end'"),
            "Function<UserException>",
        ),
        (
            {"function.rb": "X = 1\n"},
            "nofile.handler",
            "Init<LoadError>",
            "cannot load such file -- nofile",
            "Init<LoadError>",
        ),
        (
            {"function.rb": "X = 1\n"},
            "a.b.c.d",
            "Init<ArgumentError>",
            INVALID_HANDLER,
            "Init<ArgumentError>",
        ),
        (
            {"function.rb": "raise 'boom at load'\n"},
            "function.handler",
            "Init<RuntimeError>",
            "boom at load",
            "Function<UserException>",
        ),
    ],
    ids=["syntax-error", "missing-file", "bad-handler", "raise-at-load"],
)
def test_init_errors(
    make_env: Any, files: dict[str, str], handler: str, error_type: str, message: Any, header_type: str
) -> None:
    env, logs = make_env(files, handler=handler)

    async def scenario() -> Outcome:
        await env.start()
        out = await env.invoke(invocation("i"))
        await env.shutdown()
        return out

    out = run(scenario())
    assert out.function_error and out.status == "error"
    got = json.loads(out.payload)
    assert list(got) == ["errorMessage", "errorType", "stackTrace"]
    assert got["errorType"] == error_type
    if isinstance(message, str):
        assert got["errorMessage"] == message
    else:
        assert message.fullmatch(got["errorMessage"]), got["errorMessage"]
    # the runtime's error-type header appears on platform lines as spec §2.4 says (Runtime.Unknown here)
    assert env._init_failure is not None and env._init_failure[0] == fmt.platform_error_type(header_type)
    assert any(f"Error Type: {fmt.platform_error_type(header_type)}" in line for line in logs.lines)
    index = logs.lines.index("Init error when loading handler ")
    assert json.loads(logs.lines[index + 1].replace("\r", "\n")) == got
    if error_type == "Init<RuntimeError>":
        assert got["stackTrace"][0].endswith("/function.rb:1:in `<top (required)>'")


# ---- discovery ---------------------------------------------------------------------------------------------


def test_every_offered_id_runs_the_best_installed_ruby_3() -> None:
    best = choose("ruby3.3", installed())
    assert best is not None
    for runtime_id in ("ruby3.2", "ruby3.3", "ruby3.4"):
        rt = RUNTIMES[runtime_id]
        assert rt.family == "ruby" and rt.executable == best.executable and rt.version == best.version
        assert rt.runtime_version == "ruby:{}.{}.v{}".format(*best.version.split("."))
        assert rt.bootstrap_argv == ("--disable-gems", "{runtime_dir}/bootstrap.rb")
        assert Path(rt.executable).is_file() and not Path(rt.executable).is_symlink()
        assert any(Path(rt.executable).is_relative_to(p) for p in rt.host_paths)
    assert ("ruby4.0" in RUNTIMES) == any(i.major == 4 for i in installed())


def test_choose_prefers_the_exact_minor_then_the_newest_of_the_major() -> None:
    from shoal.runtimes.ruby import Interpreter

    def interp(version: str) -> Interpreter:
        return Interpreter(f"/r/{version}/bin/ruby", version, version[:3] + ".0", f"/r/{version}", ())

    found = [interp("3.1.7"), interp("3.3.5"), interp("3.4.1"), interp("2.7.8")]
    assert choose("ruby3.3", found) == found[1]
    assert choose("ruby3.2", found) == found[2]  # no 3.2: the newest Ruby 3
    assert choose("ruby4.0", found) is None
    assert choose("ruby3.2", [interp("3.1.7"), interp("2.7.8")]) == found[0]


def test_configured_shim_resolves_to_the_real_binary(tmp_path: Path) -> None:
    best = choose("ruby3.3", installed())
    assert best is not None
    shim = tmp_path / "ruby"  # what rbenv/asdf shims look like: a script that execs the real ruby
    shim.write_text(f'#!/bin/sh\nexec "{best.executable}" "$@"\n')
    shim.chmod(0o755)
    assert probe(str(shim)) == best
    found = RubyFamily().discover({"ruby3.2": str(shim), "ruby3.3": "/bin/true"})
    assert found["ruby3.2"].executable == best.executable  # the shim is never what starts
    assert "ruby3.3" not in found  # a configured path that is not a Ruby is ignored, not replaced

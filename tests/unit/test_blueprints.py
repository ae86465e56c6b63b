"""Blueprints: the catalogue (every manifest valid, every runtime covered), the writer (every file, modes,
refusals, --force), the Java build, the CLI commands, the sample events' AWS shapes (spec §10) and the
Python handlers' behaviour on them, run in-process from the written files."""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import importlib.util
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from shoal import blueprints as bp
from shoal.cli import blueprints as cli

HELLO_RUNTIMES = {
    "python-hello": "python3.12",
    "nodejs-hello": "nodejs20.x",
    "nodejs-esm-hello": "nodejs20.x",
    "ruby-hello": "ruby3.3",
    "java-hello": "java17",
    "dotnet-hello": "dotnet8",
    "shell-hello": "provided.al2023",
}
EVENT_BLUEPRINTS = {
    "python-http-api": "http_handler.lambda_handler",
    "python-s3": "s3_handler.lambda_handler",
    "python-sqs": "sqs_handler.lambda_handler",
    "python-scheduled": "scheduled_job.lambda_handler",
}
ALL = sorted([*HELLO_RUNTIMES, *EVENT_BLUEPRINTS])
SQS_FAILING = ["2e1424d4-f796-459a-8184-9c92662be6da", "6f7c1e12-45b1-4d89-9c1a-3b9f2d0e8a55"]


class Context:
    aws_request_id = "c0ffee00-0000-4000-8000-000000000001"
    function_name = "unit"


def load(path: Path) -> ModuleType:
    """Imports a written blueprint module under a unique name (no cache shared between tests)."""
    spec = importlib.util.spec_from_file_location(f"bp_{uuid.uuid4().hex}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def written(name: str, tmp_path: Path) -> tuple[bp.Blueprint, Path]:
    blueprint = bp.get(name)
    target = tmp_path / name
    bp.write(blueprint, target)
    return blueprint, target


def handler_of(name: str, tmp_path: Path) -> Any:
    blueprint, target = written(name, tmp_path)
    module, function = blueprint.handler.rsplit(".", 1)
    return getattr(load(target / f"{module}.py"), function)


# ---- the catalogue -----------------------------------------------------------------------------------------


def test_catalogue_has_every_blueprint() -> None:
    assert bp.names() == ALL
    by_name = {b.name: b for b in bp.catalogue()}
    for name, runtime in HELLO_RUNTIMES.items():
        assert by_name[name].runtime == runtime
    for name, handler in EVENT_BLUEPRINTS.items():
        assert (by_name[name].runtime, by_name[name].handler) == ("python3.12", handler)
    # Node.js: one CommonJS and one ES module variant
    assert "index.js" in by_name["nodejs-hello"].files()
    assert "index.mjs" in by_name["nodejs-esm-hello"].files()
    assert "index.js" not in by_name["nodejs-esm-hello"].files()


@pytest.mark.parametrize("name", ALL)
def test_every_manifest_is_valid(name: str) -> None:
    blueprint = bp.get(name)
    assert bp.check(blueprint) == []
    assert blueprint.event == "event.json"
    assert 10 < len(blueprint.description) <= 90 and "\n" not in blueprint.description
    assert blueprint.install, "every blueprint says what a host needs"
    assert bp.MANIFEST not in blueprint.files()
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in blueprint.files())
    event = blueprint.sample_event()
    assert isinstance(event, dict) and event


def test_handler_files_exist() -> None:
    for blueprint in bp.catalogue():
        files = blueprint.files()
        if blueprint.family == "python":
            assert blueprint.handler.rsplit(".", 1)[0] + ".py" in files
        elif blueprint.family == "nodejs":
            stem = blueprint.handler.rsplit(".", 1)[0]
            assert {f"{stem}.js", f"{stem}.mjs", f"{stem}.cjs"} & set(files)
        elif blueprint.family == "ruby":
            assert blueprint.handler.split(".", 1)[0] + ".rb" in files
        elif blueprint.family == "java":
            cls = blueprint.handler.split("::")[0]
            assert f"{bp.JAVA_SOURCES}/{cls.replace('.', '/')}.java" in files
            assert blueprint.package == bp.JAVA_BUILD_DIR and blueprint.build == "javac"
        elif blueprint.family == "dotnet":
            assembly, cls, method = blueprint.handler.split("::")
            assert "Function.cs" in files and assembly == "HelloWorld"
            assert f"public class {cls.rsplit('.', 1)[1]}" in blueprint.read("Function.cs").decode()
            assert f" {method}(" in blueprint.read("Function.cs").decode()
            assert blueprint.package == "publish" and blueprint.build == "mcs"
        else:
            assert blueprint.family == "provided"
            assert "bootstrap" in files and "bootstrap" in blueprint.executable
            assert blueprint.handler.split(".")[0] + ".sh" in files


def test_python_modules_have_distinct_names() -> None:
    """Every blueprint module is type-checked with src/: two of the same name would clash in mypy."""
    stems = [f.rsplit("/", 1)[-1][:-3] for b in bp.catalogue() for f in b.files() if f.endswith(".py")]
    assert len(stems) == len(set(stems))


def test_unknown_blueprint() -> None:
    with pytest.raises(bp.BlueprintError, match="no blueprint named 'nope'; blueprints: dotnet-hello"):
        bp.get("nope")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "is not JSON"),
        ("[]", "must be a JSON object"),
        ('{"handler": "a.b", "description": "d"}', "needs a non-empty string 'runtime'"),
        ('{"runtime": "python3.12", "description": "d"}', "needs a non-empty string 'handler'"),
        ('{"runtime": "python3.12", "handler": "a.b"}', "needs a non-empty string 'description'"),
        ('{"runtime": "r", "handler": "a.b", "description": "d", "extra": 1}', "unknown blueprint.json keys"),
        ('{"runtime": "r", "handler": "a.b", "description": "d", "memory": "512"}', "positive integer"),
        ('{"runtime": "r", "handler": "a.b", "description": "d", "timeout": 0}', "positive integer"),
        ('{"runtime": "r", "handler": "a.b", "description": "d", "build": "make"}', "'build' must be one"),
        ('{"runtime": "r", "handler": "a.b", "description": "d", "executable": "x"}', "list of file names"),
        ('{"runtime": "r", "handler": "a.b", "description": "a\\nb"}', "must be one line"),
    ],
)
def test_malformed_manifests(text: str, message: str) -> None:
    with pytest.raises(bp.BlueprintError, match=message):
        bp.parse_manifest("x", text)


def test_check_finds_problems() -> None:
    good = bp.get("python-hello")
    bad = bp.Blueprint(
        name="Bad_Name",
        runtime="python3.12",
        handler="no-dot",
        description="d",
        event="missing.json",
        executable=("bootstrap",),
    )
    object.__setattr__(bad, "name", good.name)  # its files are python-hello's
    problems = bp.check(bad)
    assert "handler 'no-dot' is not a python handler" in problems
    assert "no sample event file missing.json" in problems
    assert "'executable' names bootstrap, which it lacks" in problems
    weird = bp.Blueprint(name="python-hello", runtime="cobol1", handler="x", description="d")
    assert "unknown runtime family of 'cobol1'" in bp.check(weird)


# ---- the writer --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_every_file_is_written(name: str, tmp_path: Path) -> None:
    blueprint = bp.get(name)
    target = tmp_path / "deep" / "new" / name
    paths = bp.write(blueprint, target)
    rels = sorted(p.relative_to(target).as_posix() for p in paths)
    assert rels == blueprint.files()
    on_disk = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert on_disk == rels
    for rel in rels:
        path = target / rel
        assert path.read_bytes() == blueprint.read(rel)
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o755 if rel in blueprint.executable else 0o644), (rel, oct(mode))
    assert json.loads((target / "event.json").read_text()) == blueprint.sample_event()


def test_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    blueprint = bp.get("python-hello")
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(bp.BlueprintError, match=r"is not empty; .* pass --force"):
        bp.write(blueprint, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_hidden_files_count_as_content(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    with pytest.raises(bp.BlueprintError, match="is not empty"):
        bp.write(bp.get("python-hello"), tmp_path)


def test_an_empty_existing_directory_is_fine(tmp_path: Path) -> None:
    assert bp.write(bp.get("python-hello"), tmp_path)


def test_force_overwrites_the_blueprints_files_and_keeps_the_rest(tmp_path: Path) -> None:
    blueprint = bp.get("shell-hello")
    (tmp_path / "mine.txt").write_text("keep me")
    (tmp_path / "bootstrap").write_text("old")
    os.chmod(tmp_path / "bootstrap", 0o600)
    (tmp_path / "function.sh").symlink_to(tmp_path / "mine.txt")
    bp.write(blueprint, tmp_path, force=True)
    assert (tmp_path / "mine.txt").read_text() == "keep me"  # not written through the link either
    assert not (tmp_path / "function.sh").is_symlink()
    assert (tmp_path / "function.sh").read_bytes() == blueprint.read("function.sh")
    assert (tmp_path / "bootstrap").read_bytes() == blueprint.read("bootstrap")
    assert stat.S_IMODE((tmp_path / "bootstrap").stat().st_mode) == 0o755


def test_refuses_a_file_as_target(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(bp.BlueprintError, match="exists and is not a directory"):
        bp.write(bp.get("python-hello"), target, force=True)


def test_refuses_a_directory_where_a_file_goes(tmp_path: Path) -> None:
    (tmp_path / "event.json").mkdir()
    with pytest.raises(bp.BlueprintError, match="is a directory"):
        bp.write(bp.get("python-hello"), tmp_path, force=True)


def test_commands(tmp_path: Path) -> None:
    python = bp.get("python-sqs")
    assert bp.deploy_command(python, Path("my fn"), "orders") == [
        "shoal", "deploy", "my fn", "--name", "orders",
        "--runtime", "python3.12", "--handler", "sqs_handler.lambda_handler",
    ]  # fmt: skip
    assert bp.shell_line(bp.deploy_command(python, Path("my fn"), "orders")).startswith(
        "shoal deploy 'my fn' --name orders"
    )
    assert bp.invoke_command(python, Path("d"), "orders") == ["shoal", "invoke", "orders", "@d/event.json"]
    java = bp.get("java-hello")
    assert bp.deploy_command(java, Path("d"), "j") == [
        "shoal", "deploy", "d/build", "--name", "j", "--runtime", "java17",
        "--handler", "example.Hello::handleRequest", "--memory", "512", "--timeout", "15",
    ]  # fmt: skip
    assert bp.default_function_name(python, tmp_path / "orders-worker") == "orders-worker"
    assert bp.default_function_name(python, tmp_path / "has space") == "python-sqs"
    assert bp.valid_function_name("a_b-1") and not bp.valid_function_name("a.b")


# ---- building ----------------------------------------------------------------------------------------------


def test_java_api_sources_are_shipped() -> None:
    api = bp.java_api_sources() / "com" / "amazonaws" / "services" / "lambda" / "runtime"
    assert {"Context.java", "RequestHandler.java", "LambdaLogger.java"} <= {p.name for p in api.iterdir()}


def test_java_not_built_when_asked_not_to(tmp_path: Path) -> None:
    blueprint, target = written("java-hello", tmp_path)
    result = bp.build(blueprint, target, run=False)
    assert result is not None and not result.built
    assert result.command[0] == "javac" and "--release" in result.command
    assert "src/main/java/example/Hello.java" in result.command
    assert not (target / "build").exists()


def test_java_without_javac_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bp, "find_javac", lambda release=17: None)
    blueprint, target = written("java-hello", tmp_path)
    result = bp.build(blueprint, target)
    assert result is not None and not result.built
    assert "no javac for Java 17 or newer found; install a Java 17 JDK" in result.message
    assert "openjdk-17-jdk-headless" in result.message


def test_java_compiles_with_javac(tmp_path: Path) -> None:
    javac = bp.find_javac()
    if javac is None:
        pytest.skip("no javac for Java 17+: apt-get install -y openjdk-17-jdk-headless")
    blueprint, target = written("java-hello", tmp_path)
    (target / "build" / "stale").mkdir(parents=True)
    result = bp.build(blueprint, target)
    assert result is not None and result.built, result
    classes = sorted(p.relative_to(target / "build").as_posix() for p in (target / "build").rglob("*.class"))
    assert classes == ["example/Hello.class"]  # the API's classes come from the runtime, not the package
    assert not (target / "build" / "stale").exists()
    major = struct.unpack(">H", (target / "build" / "example" / "Hello.class").read_bytes()[6:8])[0]
    assert major == 61  # class file version of Java 17


def test_java_compile_errors_are_reported(tmp_path: Path) -> None:
    if bp.find_javac() is None:
        pytest.skip("no javac for Java 17+: apt-get install -y openjdk-17-jdk-headless")
    blueprint, target = written("java-hello", tmp_path)
    (target / bp.JAVA_SOURCES / "example" / "Hello.java").write_text("class Broken {")
    with pytest.raises(bp.BlueprintError, match=r"javac failed \(1\)"):
        bp.build(blueprint, target)


def test_nothing_to_build_and_dotnet(tmp_path: Path) -> None:
    blueprint, target = written("python-hello", tmp_path)
    assert bp.build(blueprint, target) is None
    dotnet, target = written("dotnet-hello", tmp_path)
    result = bp.build(dotnet, target, run=False)  # the command to run by hand
    assert result is not None and not result.built
    assert result.command[:4] == ["mcs", "-langversion:7", "-target:library", "-out:publish/HelloWorld.dll"]
    assert result.command[-1] == "Function.cs"


# ---- the CLI -----------------------------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="shoal")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = int(args.func(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_lists_blueprints(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "blueprints")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "RUNTIME", "DESCRIPTION"]
    rows = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert rows == {b.name: b.runtime for b in bp.catalogue()}
    for blueprint in bp.catalogue():
        assert any(line.endswith(blueprint.description) for line in lines)


def test_cli_init_writes_and_prints_the_deploy_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "orders"
    code, out, err = run_cli(capsys, "init", "--blueprint", "python-sqs", str(target))
    assert code == 0 and err == "", err
    assert out.startswith(f"Wrote blueprint python-sqs (python3.12) into {target}:\n")
    assert "  sqs_handler.py\n" in out and "  event.json\n" in out
    deploy = (
        f"  shoal deploy {target} --name orders --runtime python3.12 --handler sqs_handler.lambda_handler\n"
    )
    assert f"Next:\n{deploy}  shoal invoke orders @{target}/event.json\n" in out
    assert (target / "sqs_handler.py").is_file()


def test_cli_init_refuses_non_empty_then_force(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "x").write_text("x")
    code, out, err = run_cli(capsys, "init", "-b", "python-hello", str(tmp_path))
    assert code == 2 and out == ""
    refusal = f"{tmp_path} is not empty; choose an empty directory or pass --force to write into it"
    assert err == f"shoal: {refusal}\n"
    assert not (tmp_path / "lambda_function.py").exists()
    code, out, err = run_cli(capsys, "init", "-b", "python-hello", str(tmp_path), "--force", "--name", "fn1")
    assert code == 0 and "--name fn1 " in out
    assert (tmp_path / "lambda_function.py").is_file() and (tmp_path / "x").read_text() == "x"


def test_cli_init_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run_cli(capsys, "init", "-b", "nope", str(tmp_path / "a"))
    assert (
        code == 2
        and out == ""
        and err.startswith("shoal: no blueprint named 'nope'")
        and err.count("\n") == 1
    )
    code, _, err = run_cli(capsys, "init", "-b", "python-hello", "--name", "bad name", str(tmp_path / "b"))
    assert code == 2 and "--name 'bad name'" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_init_default_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(capsys, "init", "-b", "ruby-hello")
    assert code == 0
    assert (tmp_path / "ruby-hello" / "lambda_function.rb").is_file()
    assert "shoal deploy ruby-hello --name ruby-hello --runtime ruby3.3" in out


def test_cli_init_java_prints_the_build_when_not_built(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "hello"
    code, out, _ = run_cli(capsys, "init", "-b", "java-hello", str(target), "--no-build")
    assert code == 0
    assert "Not built: not asked to.\nNext:\n" in out
    steps = out.split("Next:\n")[1].splitlines()
    assert steps[0].startswith(f"  (cd {target} && javac --release 17 ")
    assert steps[1].startswith(f"  shoal deploy {target}/build --name hello --runtime java17 ")
    assert steps[2] == f"  shoal invoke hello @{target}/event.json"


def test_cli_init_java_compiles(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    if bp.find_javac() is None:
        pytest.skip("no javac for Java 17+: apt-get install -y openjdk-17-jdk-headless")
    code, out, _ = run_cli(capsys, "init", "-b", "java-hello", str(tmp_path / "j"))
    assert code == 0 and "Compiled with " in out and "javac" not in out.split("Next:")[1]
    assert (tmp_path / "j" / "build" / "example" / "Hello.class").is_file()


# ---- sample events: AWS's shapes (spec §10) ----------------------------------------------------------------

S3_RECORD_KEYS = {
    "eventVersion", "eventSource", "awsRegion", "eventTime", "eventName", "userIdentity",
    "requestParameters", "responseElements", "s3",
}  # fmt: skip
SQS_RECORD_KEYS = {
    "messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
    "md5OfMessageAttributes", "eventSource", "eventSourceARN", "awsRegion",
}  # fmt: skip


def sqs_attributes_md5(attributes: dict[str, Any]) -> str:
    """SQS's MD5 of message attributes: per name in order, length-prefixed name, type, transport, value."""

    def field(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    buf = b""
    for name in sorted(attributes):
        attr = attributes[name]
        buf += field(name.encode()) + field(attr["dataType"].encode())
        if attr["dataType"].startswith("Binary"):
            buf += b"\x02" + field(base64.b64decode(attr["binaryValue"]))
        else:
            buf += b"\x01" + field(attr["stringValue"].encode())
    return hashlib.md5(buf).hexdigest()


def test_s3_event_shape() -> None:
    records = bp.get("python-s3").sample_event()["Records"]
    assert len(records) == 2
    for record in records:
        assert set(record) == S3_RECORD_KEYS
        assert (record["eventVersion"], record["eventSource"]) == ("2.1", "aws:s3")
        assert set(record["s3"]) == {"s3SchemaVersion", "configurationId", "bucket", "object"}
        assert set(record["s3"]["bucket"]) == {"name", "ownerIdentity", "arn"}
        assert record["s3"]["bucket"]["arn"] == "arn:aws:s3:::" + record["s3"]["bucket"]["name"]
    created, removed = records
    assert created["eventName"] == "ObjectCreated:Put"
    assert set(created["s3"]["object"]) == {"key", "size", "eTag", "versionId", "sequencer"}
    assert removed["eventName"] == "ObjectRemoved:Delete"
    assert set(removed["s3"]["object"]) == {"key", "sequencer"}  # no size or eTag on removals


def test_sqs_event_shape() -> None:
    records = bp.get("python-sqs").sample_event()["Records"]
    assert len(records) == 4
    for record in records:
        assert set(record) == SQS_RECORD_KEYS
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"].startswith("arn:aws:sqs:us-east-1:123456789012:")
        assert uuid.UUID(record["messageId"])
        assert set(record["attributes"]) == {
            "ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
        }  # fmt: skip
        assert all(isinstance(v, str) for v in record["attributes"].values())
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
        if record["messageAttributes"]:
            for attr in record["messageAttributes"].values():
                assert set(attr) == {"stringValue", "stringListValues", "binaryListValues", "dataType"}
            assert record["md5OfMessageAttributes"] == sqs_attributes_md5(record["messageAttributes"])
        else:
            assert record["md5OfMessageAttributes"] is None
    assert len({r["messageId"] for r in records}) == 4


def test_http_event_shape() -> None:
    event = bp.get("python-http-api").sample_event()
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert {"rawPath", "rawQueryString", "headers", "requestContext", "body", "isBase64Encoded"} <= set(event)
    assert event["pathParameters"] is None and event["stageVariables"] is None
    assert all(k == k.lower() for k in event["headers"])  # header names arrive lower-cased
    ctx = event["requestContext"]
    assert set(ctx["http"]) == {"method", "path", "protocol", "sourceIp", "userAgent"}
    assert ctx["http"]["path"] == event["rawPath"]
    required = {"accountId", "apiId", "domainName", "domainPrefix", "requestId", "routeKey", "stage", "time"}
    assert required <= set(ctx)
    assert isinstance(ctx["timeEpoch"], int)
    assert int(event["headers"]["content-length"]) == len(event["body"].encode())


def test_scheduled_event_shape() -> None:
    event = bp.get("python-scheduled").sample_event()
    assert set(event) == {
        "version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail",
    }  # fmt: skip
    assert (event["version"], event["detail-type"], event["source"], event["detail"]) == (
        "0",
        "Scheduled Event",
        "aws.events",
        {},
    )
    assert event["resources"][0].startswith("arn:aws:events:us-east-1:123456789012:rule/")


def test_hello_events() -> None:
    for name in HELLO_RUNTIMES:
        assert bp.get(name).sample_event() == {"name": "Shoal"}


# ---- the Python handlers on their sample events ------------------------------------------------------------


def test_python_hello(tmp_path: Path) -> None:
    handler = handler_of("python-hello", tmp_path)
    out = handler({"name": "Shoal"}, Context())
    assert out["message"] == "Hello, Shoal!" and out["requestId"] == Context.aws_request_id
    assert handler("not a dict", Context())["message"] == "Hello, world!"


def http_event(method: str, path: str, body: str | None = None, **extra: Any) -> dict[str, Any]:
    event = copy.deepcopy(bp.get("python-http-api").sample_event())
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["body"] = body
    event.update(extra)
    return event


def test_http_routes(tmp_path: Path) -> None:
    handler = handler_of("python-http-api", tmp_path)
    created = handler(bp.get("python-http-api").sample_event(), Context())
    assert set(created) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert created["statusCode"] == 201 and isinstance(created["body"], str)
    item = json.loads(created["body"])
    assert item["name"] == "widget" and item["price"] == 5 and uuid.UUID(item["id"])
    assert created["headers"] == {"Content-Type": "application/json", "Location": f"/items/{item['id']}"}

    hello = handler(http_event("GET", "/hello/Sh%C3%B6al"), Context())
    assert hello["statusCode"] == 200 and json.loads(hello["body"]) == {"message": "Hello, Shöal!"}
    hi = handler(http_event("GET", "/hello/you", queryStringParameters={"greeting": "Hi"}), Context())
    assert json.loads(hi["body"]) == {"message": "Hi, you!"}
    root = handler(http_event("GET", "/"), Context())
    assert root["statusCode"] == 200 and "POST /items" in json.loads(root["body"])["routes"]

    missing = handler(http_event("GET", "/nowhere"), Context())
    assert missing["statusCode"] == 404 and json.loads(missing["body"])["path"] == "/nowhere"
    wrong = handler(http_event("DELETE", "/items"), Context())
    assert wrong["statusCode"] == 405 and wrong["headers"]["Allow"] == "POST"
    assert handler(http_event("POST", "/items", "not json"), Context())["statusCode"] == 400
    assert handler(http_event("POST", "/items", "[1]"), Context())["statusCode"] == 400
    encoded = base64.b64encode(b'{"name": "b64"}').decode()
    b64 = handler(http_event("POST", "/items", encoded, isBase64Encoded=True), Context())
    assert b64["statusCode"] == 201 and json.loads(b64["body"])["name"] == "b64"


def test_http_named_stage_and_payload_1(tmp_path: Path) -> None:
    handler = handler_of("python-http-api", tmp_path)
    staged = http_event("GET", "/prod/hello/stage")
    staged["requestContext"]["stage"] = "prod"
    assert json.loads(handler(staged, Context())["body"]) == {"message": "Hello, stage!"}
    rest: dict[str, Any] = {"httpMethod": "GET", "path": "/hello/rest", "headers": None, "body": None}
    rest["requestContext"] = {"stage": "prod", "path": "/prod/hello/rest", "httpMethod": "GET"}
    out = handler(rest, Context())
    assert out["statusCode"] == 200 and json.loads(out["body"]) == {"message": "Hello, rest!"}


def test_s3_keys_are_decoded(tmp_path: Path) -> None:
    handler = handler_of("python-s3", tmp_path)
    out = handler(bp.get("python-s3").sample_event(), Context())
    assert [(p["eventName"], p["bucket"], p["key"], p["size"]) for p in out["processed"]] == [
        ("ObjectCreated:Put", "sourcebucket", "Happy Face.jpg", 1024),
        ("ObjectRemoved:Delete", "sourcebucket", "reports/2024 Q1+summary.csv", None),
    ]
    assert handler({"Records": [{"eventSource": "aws:sqs"}]}, Context()) == {"processed": []}


def test_sqs_reports_exactly_the_failed_messages(tmp_path: Path) -> None:
    handler = handler_of("python-sqs", tmp_path)
    event = bp.get("python-sqs").sample_event()
    out = handler(event, Context())
    assert out == {"batchItemFailures": [{"itemIdentifier": i} for i in SQS_FAILING]}
    ok = {"Records": [r for r in event["Records"] if r["messageId"] not in SQS_FAILING]}
    assert handler(ok, Context()) == {"batchItemFailures": []}


def test_sqs_fifo_stops_at_the_first_failure(tmp_path: Path) -> None:
    handler = handler_of("python-sqs", tmp_path)
    event = bp.get("python-sqs").sample_event()
    for record in event["Records"]:
        record["eventSourceARN"] += ".fifo"
    out = handler(event, Context())
    assert [f["itemIdentifier"] for f in out["batchItemFailures"]] == [
        r["messageId"] for r in event["Records"][1:]
    ]


def test_scheduled_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = handler_of("python-scheduled", tmp_path)
    event = bp.get("python-scheduled").sample_event()
    monkeypatch.delenv("RETENTION_DAYS", raising=False)
    assert handler(event, Context()) == {
        "rule": "my-scheduled-rule",
        "scheduledTime": "2015-10-08T16:53:06Z",
        "retentionDays": 30,
        "cutoff": "2015-09-08T16:53:06Z",
        "deleted": 0,
    }
    monkeypatch.setenv("RETENTION_DAYS", "7")
    assert handler(event, Context())["cutoff"] == "2015-10-01T16:53:06Z"
    manual = handler({}, Context())
    assert manual["rule"] == "manual" and manual["retentionDays"] == 7


# ---- the other languages' sources parse --------------------------------------------------------------------


def _syntax(argv: list[str], tool: str, hint: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"no {tool} on this host: {hint}")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", ["nodejs-hello", "nodejs-esm-hello"])
def test_node_sources_parse(name: str, tmp_path: Path) -> None:
    blueprint, target = written(name, tmp_path)
    for rel in blueprint.files():
        if rel.endswith((".js", ".mjs")):
            _syntax(["node", "--check", str(target / rel)], "node", "apt-get install -y nodejs")


def test_ruby_source_parses(tmp_path: Path) -> None:
    _, target = written("ruby-hello", tmp_path)
    _syntax(["ruby", "-c", str(target / "lambda_function.rb")], "ruby", "apt-get install -y ruby")


def test_shell_sources_parse(tmp_path: Path) -> None:
    _, target = written("shell-hello", tmp_path)
    for rel in ("bootstrap", "function.sh"):
        _syntax(["sh", "-n", str(target / rel)], "sh", "a POSIX shell")
    assert (target / "bootstrap").read_text().startswith("#!/bin/sh\n")


def test_the_written_python_handlers_are_valid_modules(tmp_path: Path) -> None:
    for name in ["python-hello", *EVENT_BLUEPRINTS]:
        blueprint, target = written(name, tmp_path)
        module = blueprint.handler.rsplit(".", 1)[0]
        done = subprocess.run(
            [sys.executable, "-c", f"import {module}"], cwd=target, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr

"""Java functions (java17 / java21 …) through boto3 against ``shoal server``.

The handlers are compiled here against the aws-lambda-java-core API the runtime ships, packaged as AWS users
package them (classes at the root of a ZIP, jars under ``lib/``, a fat JAR uploaded as the package), and
checked for AWS's Java behaviour: results, the ``errorMessage``/``errorType``/``stackTrace`` error shape,
context, environment, log lines, warm reuse, timeouts, init errors. Spec §2.4, §4, §5.2.
"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from shoal.runtimes.java import JavaFamily
from tests.e2e.conftest import unique_name

FOUND = JavaFamily().discover({})
RUNTIME = next((r for r in ("java17", "java21", "java25", "java11") if r in FOUND), "java17")
pytestmark = pytest.mark.skipif(
    RUNTIME not in FOUND, reason="no JDK on this host: apt-get install -y openjdk-17-jdk-headless"
)
REPORT_RE = re.compile(r"REPORT RequestId: (\S+)\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\t.*")

SOURCES = {
    "example/Hello.java": """
package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public class Hello {
    private static int count;

    public static class Person {
        private String name;
        private List<String> tags;
        public String getName() { return name; }
        public void setName(String name) { this.name = name; }
        public List<String> getTags() { return tags; }
        public void setTags(List<String> tags) { this.tags = tags; }
    }

    public Map<String, Object> handleRequest(Person person, Context context) {
        count++;
        LambdaLogger logger = context.getLogger();
        System.out.println("hello from stdout");
        logger.log("first\\nsecond");
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("count", count);
        out.put("greeting", "Hello " + person.getName());
        out.put("tags", person.getTags());
        out.put("requestId", context.getAwsRequestId());
        out.put("functionName", context.getFunctionName());
        out.put("functionVersion", context.getFunctionVersion());
        out.put("arn", context.getInvokedFunctionArn());
        out.put("memory", context.getMemoryLimitInMB());
        out.put("remaining", context.getRemainingTimeInMillis());
        out.put("logGroup", context.getLogGroupName());
        out.put("logStream", context.getLogStreamName());
        out.put("client", context.getClientContext() == null ? null
                : context.getClientContext().getClient().getAppTitle());
        out.put("custom", context.getClientContext() == null ? null : context.getClientContext().getCustom());
        out.put("myVar", System.getenv("MY_VAR"));
        out.put("executionEnv", System.getenv("AWS_EXECUTION_ENV"));
        out.put("handler", System.getenv("_HANDLER"));
        return out;
    }
}
""",
    "example/Upper.java": """
package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;

public class Upper implements RequestHandler<String, String> {
    public String handleRequest(String input, Context context) {
        return input.toUpperCase();
    }
}
""",
    "example/Raw.java": """
package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

public class Raw implements RequestStreamHandler {
    public void handleRequest(InputStream in, OutputStream out, Context context) throws IOException {
        out.write("[".getBytes());
        out.write(in.readAllBytes());
        out.write("]".getBytes());
    }
}
""",
    "example/Fail.java": """
package example;

import com.amazonaws.services.lambda.runtime.Context;
import java.util.Map;

public class Fail {
    public int divide(Map<String, Integer> event, Context context) {
        return 100 / event.get("by");
    }

    public String slow(Map<String, Object> event) throws InterruptedException {
        Thread.sleep(30000);
        return "late";
    }
}
""",
    "example/Broken.java": """
package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;

public class Broken implements RequestHandler<Object, Object> {
    public Broken() {
        throw new IllegalArgumentException("cannot start");
    }

    public Object handleRequest(Object input, Context context) {
        return input;
    }
}
""",
    "lib/Library.java": """
package lib;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.Map;

public class Library implements RequestHandler<Map<String, Integer>, Integer> {
    public Integer handleRequest(Map<String, Integer> event, Context context) {
        return event.get("a") + event.get("b");
    }
}
""",
}


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runtime = FOUND[RUNTIME]
    src = tmp_path_factory.mktemp("java-e2e-src")
    out = tmp_path_factory.mktemp("java-e2e-classes")
    for name, text in SOURCES.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    javac = Path(runtime.executable).with_name("javac")
    api = runtime.bootstrap_dir / "bootstrap.jar"
    subprocess.run(
        [str(javac), "-encoding", "UTF-8", "-cp", str(api), "-d", str(out), *[str(src / n) for n in SOURCES]],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out


def package(classes: Path, prefix: str, *, lib_jar: bool = False, api: bool = False) -> bytes:
    """A deployment package: the classes under ``prefix`` at its root (or in lib/handlers.jar)."""
    entries = {
        p.relative_to(classes).as_posix(): p.read_bytes()
        for p in sorted(classes.rglob("*.class"))
        if p.relative_to(classes).as_posix().startswith(prefix)
    }
    if api:  # a fat JAR carries aws-lambda-java-core itself, as the shade/assembly plugins make it
        with zipfile.ZipFile(FOUND[RUNTIME].bootstrap_dir / "bootstrap.jar") as jar:
            entries.update({n: jar.read(n) for n in jar.namelist() if n.startswith("com/amazonaws/")})
    if lib_jar:
        entries = {"lib/handlers.jar": _zip(entries)}
    else:
        entries["META-INF/MANIFEST.MF"] = b"Manifest-Version: 1.0\r\n\r\n"
    return _zip(entries)


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def java_function(make_function: Any, code: bytes, handler: str, **kw: Any) -> str:
    name = unique_name("java")
    make_function(name, code, handler, RUNTIME, **kw)
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
    lambda_client: Any, make_function: Any, classes: Path
) -> None:
    name = java_function(
        make_function,
        package(classes, "example/"),
        "example.Hello::handleRequest",
        MemorySize=256,
        Environment={"Variables": {"MY_VAR": "mine"}},
    )
    client_context = base64.b64encode(
        json.dumps({"client": {"app_title": "phone"}, "custom": {"k": "v"}, "env": {}}).encode()
    ).decode()
    resp, payload, lines = invoke(
        lambda_client, name, {"name": "Ann", "tags": ["a"], "extra": 1}, ClientContext=client_context
    )
    assert resp["StatusCode"] == 200 and "FunctionError" not in resp, payload
    got = json.loads(payload)
    rid = rid_of(resp)
    assert got["count"] == 1 and got["greeting"] == "Hello Ann" and got["tags"] == ["a"]
    assert got["requestId"] == rid
    assert got["functionName"] == name and got["functionVersion"] == "$LATEST"
    assert got["arn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    assert got["memory"] == 256 and 0 < got["remaining"] <= 3000
    assert got["logGroup"] == f"/aws/lambda/{name}"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", got["logStream"])
    assert got["client"] == "phone" and got["custom"] == {"k": "v"}
    assert got["myVar"] == "mine" and got["executionEnv"] == f"AWS_Lambda_{RUNTIME}"
    assert got["handler"] == "example.Hello::handleRequest"
    assert body_lines(lines, rid) == ["hello from stdout", "first\rsecond"]
    report = lines[-1]
    assert REPORT_RE.fullmatch(report) and report.startswith(f"REPORT RequestId: {rid}\t")
    assert "Init Duration" in report and "Memory Size: 256 MB" in report

    _, payload2, lines2 = invoke(lambda_client, name, {"name": "Bob"})
    assert json.loads(payload2)["count"] == 2  # static state survives in the warm environment
    assert json.loads(payload2)["client"] is None
    assert "Init Duration" not in lines2[-1]


def test_request_and_stream_handlers(lambda_client: Any, make_function: Any, classes: Path) -> None:
    name = java_function(make_function, package(classes, "example/"), "example.Upper")
    _, payload, _ = invoke(lambda_client, name, "shoal")
    assert payload == b'"SHOAL"'
    raw = java_function(make_function, package(classes, "example/"), "example.Raw")
    _, payload, _ = invoke(lambda_client, raw, Payload=b'{"x": 1}')
    assert payload == b'[{"x": 1}]'


def test_handler_in_a_lib_jar_and_a_fat_jar_package(
    lambda_client: Any, make_function: Any, classes: Path
) -> None:
    name = java_function(make_function, package(classes, "lib/", lib_jar=True), "lib.Library")
    _, payload, _ = invoke(lambda_client, name, {"a": 2, "b": 40})
    assert payload == b"42"
    fat = java_function(make_function, package(classes, "example/", api=True), "example.Upper")
    _, payload, _ = invoke(lambda_client, fat, "fat jar")
    assert payload == b'"FAT JAR"'


def test_unhandled_exception(lambda_client: Any, make_function: Any, classes: Path) -> None:
    name = java_function(make_function, package(classes, "example/"), "example.Fail::divide")
    resp, payload, lines = invoke(lambda_client, name, {"by": 0})
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    body = json.loads(payload)
    assert body["errorMessage"] == "/ by zero" and body["errorType"] == "java.lang.ArithmeticException"
    assert re.fullmatch(r"example\.Fail\.divide\(Fail\.java:\d+\)", body["stackTrace"][0])
    logged = body_lines(lines, rid_of(resp))
    assert logged and logged[0].startswith("/ by zero: java.lang.ArithmeticException\rjava.lang.Arithmetic")
    _, payload, _ = invoke(lambda_client, name, {"by": 4})
    assert payload == b"25"  # the environment survived the exception


def test_timeout(lambda_client: Any, make_function: Any, classes: Path) -> None:
    name = java_function(make_function, package(classes, "example/"), "example.Fail::slow", Timeout=1)
    resp, payload, lines = invoke(lambda_client, name)
    assert resp["FunctionError"] == "Unhandled"
    body = json.loads(payload)
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"] == f"RequestId: {rid_of(resp)} Error: Task timed out after 1.00 seconds"
    assert lines[-1].endswith("\tStatus: timeout")


def test_init_errors(lambda_client: Any, make_function: Any, classes: Path) -> None:
    name = java_function(make_function, package(classes, "example/"), "example.Broken")
    resp, payload, lines = invoke(lambda_client, name)
    assert resp["FunctionError"] == "Unhandled"
    assert json.loads(payload) == {
        "errorMessage": "cannot start",
        "errorType": "java.lang.IllegalArgumentException",
    }
    assert lines[-1].endswith("\tStatus: error\tError Type: Runtime.BadFunctionCode"), lines

    missing = java_function(make_function, package(classes, "example/"), "example.Missing::handleRequest")
    resp, payload, lines = invoke(lambda_client, missing)
    assert resp["FunctionError"] == "Unhandled"
    assert json.loads(payload) == {
        "errorMessage": "Class not found: example.Missing",
        "errorType": "java.lang.ClassNotFoundException",
    }
    logged = body_lines(lines, rid_of(resp))
    assert logged[0].startswith("Class not found: example.Missing: java.lang.ClassNotFoundException\r")

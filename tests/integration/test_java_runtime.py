"""The Java runtime on a real JVM, through a real Environment, on each sandbox backend.

Handlers are compiled here with the JDK's javac against the bootstrap's aws-lambda-java-core API, the way a
function's author compiles against the aws-lambda-java-core artifact.
"""

import asyncio
import io
import json
import os
import re
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from shoal.environments.environment import Environment, Invocation, Settings
from shoal.runtimes import java as java_family
from shoal.sandbox import namespace
from shoal.sandbox.namespace import NamespaceBackend
from shoal.sandbox.process import ProcessBackend
from tests.function_configs import function_config

NS_OK, NS_WHY = namespace.available()
PREFERRED = ("java17", "java21", "java25", "java11")
INSTALL = "install a JDK, e.g. `apt-get install -y openjdk-17-jdk-headless`"

BACKENDS = [
    pytest.param(ProcessBackend, id="process"),
    pytest.param(
        NamespaceBackend,
        id="namespace",
        marks=pytest.mark.skipif(not NS_OK, reason=f"namespace sandbox unavailable on this host: {NS_WHY}"),
    ),
    # every environment specialised from a pre-started JVM (none kept spare)
    pytest.param(
        lambda: NamespaceBackend(stem_cells=0, await_standby=True),
        id="prestarted",
        marks=pytest.mark.skipif(not NS_OK, reason=f"namespace sandbox unavailable on this host: {NS_WHY}"),
    ),
]

SOURCES = {
    "example/Orders.java": """
package example;

import com.amazonaws.services.lambda.runtime.Context;
import java.math.BigDecimal;
import java.util.List;
import java.util.Map;

public class Orders {
    public enum Size { SMALL, LARGE }

    public static class Item {
        private String sku;
        private int qty;
        public String getSku() { return sku; }
        public void setSku(String sku) { this.sku = sku; }
        public int getQty() { return qty; }
        public void setQty(int qty) { this.qty = qty; }
    }

    public static class Customer {
        public String name;
        public List<String> tags;
    }

    public static class Order {
        private String id;
        private int count;
        private Long big;
        private double ratio;
        private boolean gift;
        private BigDecimal price;
        private Size size;
        private List<Item> items;
        private Map<String, Integer> stock;
        private int[] numbers;
        private Customer customer;
        private String missing;
        public String getId() { return id; }
        public void setId(String id) { this.id = id; }
        public int getCount() { return count; }
        public void setCount(int count) { this.count = count; }
        public Long getBig() { return big; }
        public void setBig(Long big) { this.big = big; }
        public double getRatio() { return ratio; }
        public void setRatio(double ratio) { this.ratio = ratio; }
        public boolean isGift() { return gift; }
        public void setGift(boolean gift) { this.gift = gift; }
        public BigDecimal getPrice() { return price; }
        public void setPrice(BigDecimal price) { this.price = price; }
        public Size getSize() { return size; }
        public void setSize(Size size) { this.size = size; }
        public List<Item> getItems() { return items; }
        public void setItems(List<Item> items) { this.items = items; }
        public Map<String, Integer> getStock() { return stock; }
        public void setStock(Map<String, Integer> stock) { this.stock = stock; }
        public int[] getNumbers() { return numbers; }
        public void setNumbers(int[] numbers) { this.numbers = numbers; }
        public Customer getCustomer() { return customer; }
        public void setCustomer(Customer customer) { this.customer = customer; }
        public String getMissing() { return missing; }
        public void setMissing(String missing) { this.missing = missing; }
        public String getSummary() { return id + "x" + count; }
    }

    public Order handleRequest(Order order, Context context) {
        return order;
    }
}
""",
    "example/Probe.java": """
package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.io.FileInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.LinkedHashMap;
import java.util.Map;

public class Probe implements RequestHandler<Map<String, Object>, Map<String, Object>> {
    public Map<String, Object> handleRequest(Map<String, Object> in, Context ctx) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("pid", ProcessHandle.current().pid());
        out.put("mine", System.getenv("MINE"));
        out.put("standby", System.getenv("SHOAL_STANDBY_FD"));
        out.put("userDir", System.getProperty("user.dir"));
        try {
            out.put("nio", new String(Files.readAllBytes(Paths.get("data.txt"))).trim());
        } catch (IOException e) {
            out.put("nio", e.toString());
        }
        try (FileInputStream f = new FileInputStream("data.txt")) {
            out.put("io", new String(f.readAllBytes()).trim());
        } catch (IOException e) {
            out.put("io", e.toString());
        }
        try {
            Process p = new ProcessBuilder("/bin/sh", "-c", "echo $MINE-$SHOAL_STANDBY_FD").start();
            out.put("child", new String(p.getInputStream().readAllBytes()).trim());
        } catch (IOException e) {
            out.put("child", e.toString());
        }
        try {
            Class.forName("java.lang.ProcessEnvironment").getDeclaredField("theUnmodifiableEnvironment")
                .setAccessible(true);
            out.put("reflect", "opened");
        } catch (RuntimeException | ReflectiveOperationException e) {
            out.put("reflect", e.getClass().getSimpleName());
        }
        return out;
    }
}
""",
    "example/Ctx.java": """
package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaRuntime;
import com.amazonaws.services.lambda.runtime.logging.LogLevel;
import java.util.LinkedHashMap;
import java.util.Map;

public class Ctx {
    private static int invocations;
    private static final long LOADED = System.nanoTime();

    public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
        invocations++;
        System.out.println("stdout " + event.get("n"));
        System.err.println("stderr " + event.get("n"));
        context.getLogger().log("logger line one\\nline two");
        context.getLogger().log("leveled", LogLevel.WARN);
        LambdaRuntime.getLogger().log("global logger");
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("invocations", invocations);
        out.put("loaded", LOADED);
        out.put("requestId", context.getAwsRequestId());
        out.put("functionName", context.getFunctionName());
        out.put("functionVersion", context.getFunctionVersion());
        out.put("arn", context.getInvokedFunctionArn());
        out.put("memory", context.getMemoryLimitInMB());
        out.put("remaining", context.getRemainingTimeInMillis());
        out.put("logGroup", context.getLogGroupName());
        out.put("logStream", context.getLogStreamName());
        out.put("trace", context.getXrayTraceId());
        out.put("identity", context.getIdentity() == null ? null : context.getIdentity().getIdentityId());
        out.put("client", context.getClientContext() == null ? null
                : context.getClientContext().getClient().getAppTitle() + "/"
                + context.getClientContext().getCustom().get("k") + "/"
                + context.getClientContext().getEnvironment().get("platform"));
        out.put("sameLogger", context.getLogger() == LambdaRuntime.getLogger());
        out.put("env", System.getenv("GREETING"));
        out.put("taskRoot", System.getenv("LAMBDA_TASK_ROOT"));
        out.put("cwd", System.getProperty("user.dir"));
        out.put("traceProperty", System.getProperty("com.amazonaws.xray.traceHeader"));
        out.put("charset", java.nio.charset.Charset.defaultCharset().name());
        out.put("fileNames", System.getProperty("sun.jnu.encoding"));
        out.put("event", event);
        return out;
    }
}
""",
    "example/Greeter.java": """
package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.Map;

public class Greeter implements RequestHandler<Map<String, String>, String> {
    public String handleRequest(Map<String, String> event, Context context) {
        return "Hello, " + event.get("name") + "! \\"quoted\\"";
    }
}
""",
    "example/Echo.java": """
package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

public class Echo implements RequestStreamHandler {
    public void handleRequest(InputStream in, OutputStream out, Context context) throws IOException {
        byte[] bytes = in.readAllBytes();
        out.write(("{\\"echo\\":" + new String(bytes, "UTF-8") + ",\\"id\\":\\"" + context.getAwsRequestId()
                + "\\"}").getBytes("UTF-8"));
    }
}
""",
    "example/Simple.java": """
package example;

public class Simple {
    public static int twice(int n) { return 2 * n; }
    public static String shout(String s) { return s.toUpperCase(); }
    public void nothing() { }
}
""",
    "example/Errors.java": """
package example;

import com.amazonaws.services.lambda.runtime.Context;
import java.util.Map;

public class Errors {
    public int divide(Map<String, Integer> event, Context context) {
        int zero = event.get("zero");
        return 10 / zero;
    }

    public String wrapped(Map<String, Object> event) {
        try {
            Integer.parseInt("nope");
            return "unreachable";
        } catch (NumberFormatException e) {
            throw new IllegalStateException("could not parse", e);
        }
    }

    public String sleep(Map<String, Object> event) throws InterruptedException {
        System.out.println("going to sleep");
        Thread.sleep(60000);
        return "late";
    }

    public String exit(Map<String, Object> event) {
        System.out.print("bye without a newline");
        System.exit(3);
        return "never";
    }
}
""",
    "example/BadCtor.java": """
package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;

public class BadCtor implements RequestHandler<Object, Object> {
    public BadCtor() {
        throw new IllegalStateException("constructor failed");
    }

    public Object handleRequest(Object in, Context context) {
        return in;
    }
}
""",
    "example/BadStatic.java": """
package example;

public class BadStatic {
    static final int VALUE = Integer.parseInt("not a number");

    public int handle(Object in) {
        return VALUE;
    }
}
""",
    "example/NoDefault.java": """
package example;

public class NoDefault {
    public NoDefault(String unused) { }

    public String handle(String in) {
        return in;
    }
}
""",
    "com/amazonaws/services/lambda/runtime/events/SQSEvent.java": """
package com.amazonaws.services.lambda.runtime.events;

import java.util.List;
import java.util.Map;

/** Shaped like aws-lambda-java-events' SQSEvent: bean names that differ from the JSON's. */
public class SQSEvent {
    private List<SQSMessage> records;
    public List<SQSMessage> getRecords() { return records; }
    public void setRecords(List<SQSMessage> records) { this.records = records; }

    public static class SQSMessage {
        private String messageId;
        private String body;
        private String eventSourceArn;
        private Map<String, String> attributes;
        public String getMessageId() { return messageId; }
        public void setMessageId(String messageId) { this.messageId = messageId; }
        public String getBody() { return body; }
        public void setBody(String body) { this.body = body; }
        public String getEventSourceArn() { return eventSourceArn; }
        public void setEventSourceArn(String eventSourceArn) { this.eventSourceArn = eventSourceArn; }
        public Map<String, String> getAttributes() { return attributes; }
        public void setAttributes(Map<String, String> attributes) { this.attributes = attributes; }
    }
}
""",
    "com/amazonaws/services/lambda/runtime/events/ScheduledEvent.java": """
package com.amazonaws.services.lambda.runtime.events;

public class ScheduledEvent {
    private String detailType;
    private String source;
    public String getDetailType() { return detailType; }
    public void setDetailType(String detailType) { this.detailType = detailType; }
    public String getSource() { return source; }
    public void setSource(String source) { this.source = source; }
}
""",
    "com/amazonaws/services/lambda/runtime/events/SQSBatchResponse.java": """
package com.amazonaws.services.lambda.runtime.events;

import java.util.List;

public class SQSBatchResponse {
    private List<BatchItemFailure> batchItemFailures;
    public SQSBatchResponse(List<BatchItemFailure> failures) { this.batchItemFailures = failures; }
    public List<BatchItemFailure> getBatchItemFailures() { return batchItemFailures; }

    public static class BatchItemFailure {
        private final String itemIdentifier;
        public BatchItemFailure(String id) { this.itemIdentifier = id; }
        public String getItemIdentifier() { return itemIdentifier; }
    }
}
""",
    "example/Queue.java": """
package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import com.amazonaws.services.lambda.runtime.events.SQSBatchResponse;
import com.amazonaws.services.lambda.runtime.events.SQSEvent;
import com.amazonaws.services.lambda.runtime.events.ScheduledEvent;
import java.util.ArrayList;
import java.util.List;

public class Queue implements RequestHandler<SQSEvent, SQSBatchResponse> {
    public SQSBatchResponse handleRequest(SQSEvent event, Context context) {
        List<SQSBatchResponse.BatchItemFailure> failed = new ArrayList<>();
        for (SQSEvent.SQSMessage m : event.getRecords()) {
            if (m.getBody().contains("bad") && m.getEventSourceArn().startsWith("arn:aws:sqs:")) {
                failed.add(new SQSBatchResponse.BatchItemFailure(m.getMessageId()
                        + "/" + m.getAttributes().get("ApproximateReceiveCount")));
            }
        }
        return new SQSBatchResponse(failed);
    }

    public String schedule(ScheduledEvent event) {
        return event.getDetailType() + " from " + event.getSource();
    }
}
""",
    "org/apache/logging/log4j/ThreadContext.java": """
package org.apache.logging.log4j;

import java.util.HashMap;
import java.util.Map;

/** Stands in for log4j 2's context map. */
public final class ThreadContext {
    private static final Map<String, String> MAP = new HashMap<>();
    public static void put(String key, String value) { MAP.put(key, value); }
    public static String get(String key) { return MAP.get(key); }
}
""",
    "example/Log4jUser.java": """
package example;

import com.amazonaws.services.lambda.runtime.LambdaRuntimeInternal;
import org.apache.logging.log4j.ThreadContext;

public class Log4jUser {
    static {
        LambdaRuntimeInternal.setUseLog4jAppender(true); // what aws-lambda-java-log4j2's appender does
    }

    public String handle(Object event) {
        return ThreadContext.get("AWSRequestId");
    }
}
""",
    "jarred/InJar.java": """
package jarred;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.Map;

public class InJar implements RequestHandler<Map<String, Object>, Map<String, Object>> {
    public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
        event.put("from", InJar.class.getProtectionDomain().getCodeSource().getLocation().getPath());
        return event;
    }
}
""",
}


@pytest.fixture(scope="module")
def java_runtime():
    try:
        found = java_family.JavaFamily().discover({})
    except OSError as exc:
        pytest.skip(f"no Java runtime could be prepared: {exc}")
    for runtime_id in PREFERRED:
        if runtime_id in found:
            return found[runtime_id]
    pytest.skip(f"no JDK 11/17/21/25 on this host: {INSTALL}")


RECORDS = {
    "modern/Points.java": """
package modern;

import java.util.List;

public class Points {
    public record Point(int x, int y, String label, List<Point> near) { }

    public Point move(Point p) {
        return new Point(p.x() + 1, p.y() * 2, p.label().toUpperCase(), p.near());
    }
}
""",
}


def javac_for(runtime) -> Path:
    javac = Path(runtime.executable).with_name("javac")
    return javac if javac.exists() else Path(shutil.which("javac") or "javac")


def compile_java(runtime, sources, src: Path, out: Path, *release: str) -> None:
    for name, text in sources.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    api = runtime.bootstrap_dir / "bootstrap.jar"
    subprocess.run(
        [str(javac_for(runtime)), *release, "-encoding", "UTF-8", "-cp", f"{api}:{out}", "-d", str(out)]
        + [str(src / n) for n in sources],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def classes(java_runtime, tmp_path_factory):
    """The test handlers, compiled against the runtime's API classes (Java 11 class files)."""
    src = tmp_path_factory.mktemp("java-src")
    out = tmp_path_factory.mktemp("java-classes")
    compile_java(java_runtime, SOURCES, src, out, "--release", "11")
    if int(java_runtime.id.removeprefix("java")) >= 16:
        compile_java(java_runtime, RECORDS, src, out)
    return out


def make_jar(root: Path, prefixes=("",), extra: Path | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n\r\n")
        for path in sorted(root.rglob("*.class")):
            name = path.relative_to(root).as_posix()
            if name.startswith(prefixes):
                zf.write(path, name)
        if extra is not None:
            with zipfile.ZipFile(extra) as api:
                for name in api.namelist():
                    if name.startswith("com/amazonaws/"):
                        zf.writestr(name, api.read(name))
    return buf.getvalue()


def config(runtime_id, **kw):
    return function_config(
        **{
            "name": "jfn",
            "runtime": runtime_id,
            "handler": "example.Ctx::handleRequest",
            "timeout": 10,
            "memory_size": 256,
            **kw,
        }
    )


@pytest.fixture(params=BACKENDS)
def backend(request):
    made = request.param()
    yield made
    if isinstance(made, NamespaceBackend):
        made.close()


@pytest.fixture
def make_env(tmp_path, backend, java_runtime, classes):
    made = []

    def make(code=None, **kw):
        code_dir = tmp_path / f"code{len(made)}"
        if code is None:
            shutil.copytree(classes, code_dir, ignore=shutil.ignore_patterns("jarred"))
        else:
            code_dir.mkdir()
            code(code_dir)
        _readable(code_dir)  # as the code store leaves it: the sandboxed uid must read it
        lines = []  # every line of the environment's stream, INIT phase included
        env = Environment(
            config(java_runtime.id, **kw),
            java_runtime,
            backend,
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


def _readable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _is_zombie_or_gone(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def invocation(rid="req-1", payload=b"{}", **kw):
    return Invocation(
        request_id=rid,
        payload=payload,
        invoked_arn="arn:aws:lambda:us-east-1:123456789012:function:jfn",
        **kw,
    )


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


def invoke_all(env, *invocations):
    async def scenario():
        await env.start()
        outs = [await env.invoke(inv) for inv in invocations]
        await env.shutdown()
        return outs

    return run(scenario())


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
    first, second = invoke_all(
        env,
        invocation("a", b'{"n": 1}', trace_id="Root=1-5e1b4151-5ac6c58f5b3daa6b0a3b1c2d;Sampled=1"),
        invocation("b", b'{"n": 2}', client_context=cc),
    )
    assert not first.function_error, (first.payload, env.all_lines)
    one, two = json.loads(first.payload), json.loads(second.payload)
    assert one["invocations"] == 1 and two["invocations"] == 2  # static state survives: warm reuse
    assert one["loaded"] == two["loaded"]
    assert one["requestId"] == "a" and two["requestId"] == "b"
    assert one["functionName"] == "jfn" and one["functionVersion"] == "$LATEST"
    assert one["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:jfn"
    assert one["memory"] == 256 and isinstance(one["memory"], int)
    assert 0 < one["remaining"] <= 10000
    assert one["logGroup"] == "/aws/lambda/jfn" and one["logStream"] == env.stream
    assert one["trace"] == "Root=1-5e1b4151-5ac6c58f5b3daa6b0a3b1c2d;Sampled=1"
    assert one["traceProperty"] == one["trace"]
    assert one["identity"] is None and one["client"] is None
    assert two["client"] == "app/v/Android"
    assert one["sameLogger"] is True
    assert one["env"] == "hi"
    assert one["event"] == {"n": 1}
    assert one["cwd"] == one["taskRoot"]
    assert one["charset"] == "UTF-8" and one["fileNames"] == "UTF-8"  # as on AWS, whatever the host's locales
    lines = first.log_lines
    assert lines[0] == "START RequestId: a Version: $LATEST"
    body = lines[1:-2]
    assert "stdout 1" in body and "stderr 1" in body
    assert "logger line one\rline two" in body  # one LambdaLogger call is one event
    assert "[WARN] leveled" in body and "global logger" in body
    assert lines[-2] == "END RequestId: a"
    assert lines[-1].startswith("REPORT RequestId: a\tDuration: ") and "Init Duration" in lines[-1]
    assert "Init Duration" not in second.log_lines[-1]


def test_pojo_in_and_out(make_env):
    env = make_env(handler="example.Orders::handleRequest")
    order = {
        "id": "o-1",
        "count": "7",
        "big": 12345678901234,
        "ratio": 0.25,
        "gift": True,
        "price": 19.99,
        "size": "LARGE",
        "items": [{"sku": "a", "qty": 2, "unknown": 1}, {"sku": "b"}],
        "stock": {"a": 1, "b": 2},
        "numbers": [1, 2, 3],
        "customer": {"name": "Ann", "tags": ["x"]},
        "ignored": {"deep": [1]},
    }
    (out,) = invoke_all(env, invocation("p", json.dumps(order).encode()))
    assert not out.function_error, out.payload
    got = json.loads(out.payload)
    assert got == {
        "id": "o-1",
        "count": 7,
        "big": 12345678901234,
        "ratio": 0.25,
        "gift": True,
        "price": 19.99,
        "size": "LARGE",
        "items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 0}],
        "stock": {"a": 1, "b": 2},
        "numbers": [1, 2, 3],
        "customer": {"name": "Ann", "tags": ["x"]},
        "summary": "o-1x7",
    }
    # properties in declaration order, getter-only ones after; null properties left out
    assert list(got) == [
        "id",
        "count",
        "big",
        "ratio",
        "gift",
        "price",
        "size",
        "items",
        "stock",
        "numbers",
        "customer",
        "summary",
    ]


def test_events_library_names_and_output_beans(make_env):
    """Classes of aws-lambda-java-events take AWS's JSON names (Records, eventSourceARN, detail-type)."""
    env = make_env(handler="example.Queue")
    event = {
        "Records": [
            {
                "messageId": "m1",
                "body": "ok",
                "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
                "attributes": {},
            },
            {
                "messageId": "m2",
                "body": "bad",
                "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
                "attributes": {"ApproximateReceiveCount": "3"},
            },
        ]
    }
    (out,) = invoke_all(env, invocation("q", json.dumps(event).encode()))
    assert json.loads(out.payload) == {"batchItemFailures": [{"itemIdentifier": "m2/3"}]}, out.payload
    env2 = make_env(handler="example.Queue::schedule")
    (out2,) = invoke_all(env2, invocation("s", b'{"detail-type": "Scheduled Event", "source": "aws.events"}'))
    assert out2.payload == b'"Scheduled Event from aws.events"'


def test_records(make_env, java_runtime):
    if int(java_runtime.id.removeprefix("java")) < 16:
        pytest.skip("records need Java 16+")
    env = make_env(handler="modern.Points::move")
    point = {"x": 1, "y": 2, "label": "a", "near": [{"x": 0, "y": 0, "label": "o", "near": []}]}
    (out,) = invoke_all(env, invocation("r", json.dumps(point).encode()))
    assert json.loads(out.payload) == {
        "x": 2,
        "y": 4,
        "label": "A",
        "near": [{"x": 0, "y": 0, "label": "o", "near": []}],
    }


def test_log4j_context_gets_the_request_id(make_env):
    env = make_env(handler="example.Log4jUser::handle")
    first, second = invoke_all(env, invocation("l1"), invocation("l2"))
    assert (first.payload, second.payload) == (b'"l1"', b'"l2"')  # the class's static init ran at INIT


def test_request_handler_string_is_json_encoded(make_env):
    env = make_env(handler="example.Greeter")
    (out,) = invoke_all(env, invocation("g", b'{"name": "Ann"}'))
    assert out.payload == b'"Hello, Ann! \\"quoted\\""'


def test_stream_handler_and_static_methods(make_env):
    env = make_env(handler="example.Echo")
    (out,) = invoke_all(env, invocation("s", b'{"raw": [1, 2]}'))
    assert json.loads(out.payload) == {"echo": {"raw": [1, 2]}, "id": "s"}
    env2 = make_env(handler="example.Simple::twice")
    (out2,) = invoke_all(env2, invocation("t", b"21"))
    assert out2.payload == b"42"
    env3 = make_env(handler="example.Simple::nothing")
    (out3,) = invoke_all(env3, invocation("n", b'{"ignored": true}'))
    assert out3.payload == b"null"


def test_handler_in_a_lib_jar(make_env, classes):
    def code(d):
        (d / "lib").mkdir()
        (d / "lib" / "handlers.jar").write_bytes(make_jar(classes, ("jarred/",)))

    env = make_env(code, handler="jarred.InJar")
    (out,) = invoke_all(env, invocation("j", b'{"a": 1}'))
    got = json.loads(out.payload)
    assert got["a"] == 1 and got["from"].endswith("/lib/handlers.jar")


def test_fat_jar_as_the_package(make_env, classes, java_runtime):
    """A JAR uploaded as the deployment package is a ZIP: its classes land at the task root."""
    jar = make_jar(classes, ("example/",), extra=java_runtime.bootstrap_dir / "bootstrap.jar")

    def code(d):
        with zipfile.ZipFile(io.BytesIO(jar)) as zf:
            zf.extractall(d)

    env = make_env(code, handler="example.Greeter")
    (out,) = invoke_all(env, invocation("f", b'{"name": "Jar"}'))
    assert out.payload == b'"Hello, Jar! \\"quoted\\""'


def test_json_log_format(make_env):
    env = make_env(log_format="JSON", application_log_level="WARN")
    (out,) = invoke_all(env, invocation("js", b'{"n": 5}'))
    records = [json.loads(line) for line in out.log_lines if line.startswith("{")]
    messages = {r["message"]: r for r in records}
    assert messages["leveled"]["level"] == "WARN" and messages["leveled"]["AWSRequestId"] == "js"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", messages["leveled"]["timestamp"])
    assert messages["logger line one\nline two"]["level"] == "UNDEFINED"
    assert "stdout 5" in out.log_lines  # System.out stays plain text


def test_the_class_data_sharing_archive_is_used(make_env):
    """-Xshare:on makes the JVM refuse to start when it cannot map the archive for this sandbox's paths."""
    env = make_env(environment={"JAVA_TOOL_OPTIONS": "-Xshare:on"})
    (out,) = invoke_all(env, invocation("x", b'{"n": 0}'))
    assert not out.function_error, (out.payload, out.log_lines)
    assert "Picked up JAVA_TOOL_OPTIONS: -Xshare:on" in env.all_lines


# ---- errors ---------------------------------------------------------------------------------------------


def test_unhandled_exception_shape_and_log(make_env):
    env = make_env(handler="example.Errors::divide")
    (out,) = invoke_all(env, invocation("e", b'{"zero": 0}'))
    assert out.function_error and out.status == "success"
    body = json.loads(out.payload)
    assert list(body) == ["errorMessage", "errorType", "stackTrace"]
    assert body["errorMessage"] == "/ by zero"
    assert body["errorType"] == "java.lang.ArithmeticException"
    assert re.fullmatch(r"example\.Errors\.divide\(Errors\.java:\d+\)", body["stackTrace"][0])
    assert (
        body["stackTrace"][-1].endswith(")") and "java.lang.reflect.Method.invoke" in body["stackTrace"][-1]
    )
    assert not any("shoal.runtime" in frame for frame in body["stackTrace"])
    logged = [line for line in out.log_lines if line.startswith("/ by zero: java.lang.ArithmeticException")]
    assert (
        len(logged) == 1
        and "\rjava.lang.ArithmeticException: / by zero\r\tat example.Errors.divide(" in logged[0]
    )


def test_exception_with_a_cause(make_env):
    env = make_env(handler="example.Errors::wrapped")
    (out,) = invoke_all(env, invocation("c"))
    body = json.loads(out.payload)
    assert (
        body["errorMessage"] == "could not parse" and body["errorType"] == "java.lang.IllegalStateException"
    )
    assert body["cause"]["errorType"] == "java.lang.NumberFormatException"
    assert body["cause"]["errorMessage"] == 'For input string: "nope"'
    assert any(frame.startswith("example.Errors.wrapped(") for frame in body["cause"]["stackTrace"])


def test_bad_input_is_a_json_parsing_error(make_env):
    env = make_env(handler="example.Orders::handleRequest")
    (out,) = invoke_all(env, invocation("b", b'{"count": {"not": "a number"}}'))
    body = json.loads(out.payload)
    assert body["errorMessage"] == "An error occurred during JSON parsing"
    assert body["errorType"] == "java.lang.RuntimeException" and body["stackTrace"] == []
    assert body["cause"]["errorType"] == "java.io.UncheckedIOException"


def test_timeout(make_env):
    env = make_env(handler="example.Errors::sleep", timeout=1)
    started = time.monotonic()
    (out,) = invoke_all(env, invocation("t"))
    assert time.monotonic() - started < 30
    assert out.status == "timeout"
    assert json.loads(out.payload) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "RequestId: t Error: Task timed out after 1.00 seconds",
    }
    assert "going to sleep" in out.log_lines


def test_system_exit_is_runtime_exit_error(make_env):
    env = make_env(handler="example.Errors::exit")
    (out,) = invoke_all(env, invocation("x"))
    assert "bye without a newline" in out.log_lines
    assert json.loads(out.payload) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": "RequestId: x Error: Runtime exited with error: exit status 3",
    }


# ---- handler faults and init errors (as AWS's Java runtime interface client reports them) -----------------


def test_class_not_found_is_answered_to_every_invoke(make_env):
    env = make_env(handler="example.Nope::handleRequest")
    first, second = invoke_all(env, invocation("n1"), invocation("n2"))
    for out in (first, second):
        assert out.function_error
        assert json.loads(out.payload) == {
            "errorMessage": "Class not found: example.Nope",
            "errorType": "java.lang.ClassNotFoundException",
        }
    logged = [line for line in first.log_lines if line.startswith("Class not found: example.Nope")]
    assert logged and "java.lang.ClassNotFoundException: example.Nope" in logged[0]
    assert "Init Duration" in first.log_lines[-1]  # INIT itself succeeded, as on AWS


def test_method_not_found(make_env):
    env = make_env(handler="example.Ctx::nope")
    (out,) = invoke_all(env, invocation("m"))
    assert json.loads(out.payload) == {
        "errorMessage": "No public method named nope with appropriate method signature found on class "
        "example.Ctx"
    }


def test_no_public_zero_argument_constructor(make_env):
    env = make_env(handler="example.NoDefault::handle")
    (out,) = invoke_all(env, invocation("d", b'"x"'))
    assert json.loads(out.payload) == {
        "errorMessage": "Class example.NoDefault has no public zero-argument constructor",
        "errorType": "java.lang.Exception",
    }


def test_constructor_failure_is_an_init_error(make_env):
    env = make_env(handler="example.BadCtor")
    (out,) = invoke_all(env, invocation("i"))
    assert json.loads(out.payload) == {
        "errorMessage": "constructor failed",
        "errorType": "java.lang.IllegalStateException",
    }
    assert out.error_type == "Runtime.BadFunctionCode"
    lines = env.all_lines
    report = next(line for line in lines if line.startswith("INIT_REPORT"))
    assert report.endswith("\tPhase: init\tStatus: error\tError Type: Runtime.BadFunctionCode")
    logged = next(
        line for line in lines if line.startswith("constructor failed: java.lang.IllegalStateException")
    )
    assert "\rjava.lang.IllegalStateException: constructor failed\r\tat example.BadCtor.<init>(" in logged
    assert lines.index(logged) < lines.index(report) < lines.index("START RequestId: i Version: $LATEST")


def test_static_initializer_failure_is_an_init_error(make_env):
    env = make_env(handler="example.BadStatic::handle")
    (out,) = invoke_all(env, invocation("s"))
    assert json.loads(out.payload) == {
        "errorMessage": "Error loading class example.BadStatic",
        "errorType": "java.lang.ExceptionInInitializerError",
    }


def test_invalid_handler_string(make_env):
    env = make_env(handler="example.Ctx::")
    (out,) = invoke_all(env, invocation("v"))
    assert json.loads(out.payload) == {"errorMessage": "Invalid handler: `example.Ctx::'"}


def test_java_runtime_ids_follow_installed_majors():
    jvms = java_family.installed()
    if not jvms:
        pytest.skip(f"no JVM on this host: {INSTALL}")
    majors = {j.major for j in jvms}
    for jvm in jvms:
        assert jvm.java.is_absolute() and not str(jvm.java).startswith("/usr/bin/")
        assert (jvm.home / "bin" / "java").exists()
    picked = java_family._pick(jvms, min(majors))
    assert picked is not None and picked.major == min(majors)
    assert java_family._pick(jvms, 3) is None


def test_runtimes_setting_maps_an_id_to_a_java_home(java_runtime):
    home = Path(java_runtime.executable).parent.parent
    major = int(java_runtime.id.removeprefix("java"))
    found = java_family.JavaFamily().discover({java_runtime.id: str(home)})
    assert found[java_runtime.id].executable == java_runtime.executable
    wrong = next(m for m in java_family.SUPPORTED if m != major)
    assert f"java{wrong}" not in java_family.JavaFamily().discover({f"java{wrong}": str(home)})


def test_cache_survives_a_read_only_package(java_runtime):
    """The build lives in the cache directory, never next to the sources."""
    assert not java_runtime.bootstrap_dir.is_relative_to(java_family.SOURCES)
    assert (java_runtime.bootstrap_dir / ".complete").exists()
    names = json.loads((java_runtime.bootstrap_dir / ".complete").read_text())["archives"]
    assert names and all(n.startswith("cds/") for n in names)
    assert os.access(java_runtime.bootstrap_dir / "bootstrap.jar", os.R_OK)


def test_every_installed_java_version(tmp_path, classes):
    """Each offered id runs on its own JVM and maps its archive (ProcessBackend; the full matrix runs on the
    preferred id). -Xshare:on makes a JVM that cannot use its archive or AOT cache refuse to start."""
    found = java_family.JavaFamily().discover({})
    assert found, INSTALL
    for runtime_id, runtime in sorted(found.items()):
        code = tmp_path / runtime_id
        shutil.copytree(classes, code)
        _readable(code)
        lines: list[str] = []
        env = Environment(
            config(
                runtime_id,
                handler="example.Ctx::handleRequest",
                environment={"JAVA_TOOL_OPTIONS": "-Xshare:on"},
            ),
            runtime,
            ProcessBackend(),
            code,
            tmp_path / "envs",
            lambda account, group, stream, ts, message, lines=lines: lines.append(message),
            Settings(region="us-east-1", init_timeout=10, endpoint="http://127.0.0.1:1"),
        )
        try:
            (out,) = invoke_all(env, invocation("v", b'{"n": 3}'))
        finally:
            if env.process is not None and env.process.returncode is None:
                env.process.kill()
        assert not out.function_error, (runtime_id, out.payload, lines)
        assert json.loads(out.payload)["event"] == {"n": 3}
        assert not [line for line in lines if "][cds" in line or "][aot" in line], lines
        assert runtime.runtime_version.startswith(f"java:{runtime_id.removeprefix('java')}.")


PRESTARTED = pytest.param(
    lambda: NamespaceBackend(stem_cells=0, await_standby=True),
    id="prestarted",
    marks=pytest.mark.skipif(not NS_OK, reason=f"namespace sandbox unavailable on this host: {NS_WHY}"),
)


def _probe_code(classes):
    def code(root: Path) -> None:
        shutil.copytree(classes, root, ignore=shutil.ignore_patterns("jarred"), dirs_exist_ok=True)
        (root / "data.txt").write_text("read relative to the task root\n")

    return code


@pytest.mark.parametrize("backend", [PRESTARTED], indirect=True)
def test_a_prestarted_jvm_becomes_the_functions_own(make_env, classes, java_runtime):
    if not java_runtime.prestart:
        pytest.skip("JVMs are not pre-started here: the bootstrap's JNI helper needs a C compiler (apt-get install gcc)")
    env = make_env(_probe_code(classes), handler="example.Probe::handleRequest", environment={"MINE": "mine"})
    (out,) = invoke_all(env, invocation())
    got = json.loads(out.payload)
    assert "pid" in got, (got, env.all_lines)
    assert got["pid"] == 2  # under the launcher's init: specialised, not started for the function
    assert got["mine"] == "mine" and got["standby"] is None
    assert got["child"] == "mine-"  # a child process gets the function's environment, not the standby's
    assert got["userDir"] == "/var/task"
    assert got["nio"] == got["io"] == "read relative to the task root"  # the JVM's directory shows the code
    # java.lang is opened to the runtime's own classes only, as on a JVM started for the function
    assert got["reflect"] == "InaccessibleObjectException"
    # what the JVM printed while it stood by (e.g. a JDK's warnings about its agent) is not the function's
    app = [line for line in env.all_lines if not line.startswith(("INIT_START", "START", "END", "REPORT"))]
    assert app == [], app


@pytest.mark.parametrize("backend", [PRESTARTED], indirect=True)
def test_java_tool_options_get_a_jvm_started_for_the_function(make_env, classes):
    env = make_env(
        _probe_code(classes),
        handler="example.Probe::handleRequest",
        environment={"JAVA_TOOL_OPTIONS": "-Dshoal.probe=1"},
    )
    (out,) = invoke_all(env, invocation())
    got = json.loads(out.payload)
    assert got["pid"] == 1 and got["io"] == "read relative to the task root"

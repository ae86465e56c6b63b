"""The ``shoal`` commands (deploy, invoke, functions, logs) against a real server, as a user runs them."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _server import (
    ACCOUNT,
    REGION,
    ROLE,
    LineReader,
    ShoalServer,
    client_env,
    free_port,
    make_zip,
    runtime,
    serve,
)
from _server import wait_for as poll_until

LINE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32} ")
SOURCE = """
import os

def lambda_handler(event, context):
    print("printed:", event.get("say", "nothing"))
    if event.get("fail"):
        raise ValueError("asked to fail")
    env = {k: v for k, v in os.environ.items() if k.startswith("E_")}
    return {"version": VERSION, "event": event, "env": env, "request": context.aws_request_id}
"""


def source(version: int) -> str:
    return f"VERSION = {version}\n" + SOURCE


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalServer]:
    yield from serve(tmp_path_factory, "cli")


def shoal(
    *args: str, endpoint: str | None, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    extra = {"SHOAL_ENDPOINT": endpoint} if endpoint else {}
    return subprocess.run(
        [sys.executable, "-m", "shoal", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=client_env(**extra),
        check=False,
    )


def runtime_args() -> list[str]:
    """Nothing when the CLI's default (python3.12) is installed, so that the default itself is tested."""
    return [] if runtime() == "python3.12" else ["--runtime", runtime()]


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("shoal: "), out.stderr
    assert "Traceback" not in out.stderr
    return lines[0]


@pytest.fixture(scope="module")
def hello(server: ShoalServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A function deployed from a directory with ``shoal deploy``; its name is the directory's."""
    root = tmp_path_factory.mktemp("dirs") / "hello_cli"
    root.mkdir()
    (root / "lambda_function.py").write_text(source(1))
    out = shoal("deploy", str(root), *runtime_args(), endpoint=server.endpoint)
    assert out.returncode == 0, out.stderr
    return "hello_cli"


def invoke_json(server: ShoalServer, name: str, event: dict[str, Any]) -> dict[str, Any]:
    resp = server.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())
    assert "FunctionError" not in resp
    result: dict[str, Any] = json.loads(resp["Payload"].read())
    return result


# ---- deploy ----


def test_deploy_directory_creates_then_updates(server: ShoalServer, tmp_path: Path) -> None:
    root = tmp_path / "deploy_me"
    root.mkdir()
    (root / "lambda_function.py").write_text(source(1))
    (root / "pkg").mkdir()
    (root / "pkg" / "data.txt").write_text("packaged")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "junk.pyc").write_bytes(b"junk")
    out = shoal("deploy", str(root), *runtime_args(), endpoint=server.endpoint)
    assert out.returncode == 0, out.stderr
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:deploy_me"
    assert f"created {arn}" in out.stdout
    assert "state Active" in out.stdout
    lam = server.client("lambda")
    conf = lam.get_function_configuration(FunctionName="deploy_me")
    assert conf["State"] == "Active"
    assert (conf["Runtime"], conf["Handler"]) == (runtime(), "lambda_function.lambda_handler")
    assert conf["Role"].startswith("arn:aws:iam::") and conf["MemorySize"] == 128
    assert invoke_json(server, "deploy_me", {"say": "x"})["version"] == 1

    (root / "lambda_function.py").write_text(source(2))
    out = shoal(
        "deploy",
        str(root),
        "--memory",
        "256",
        "--timeout",
        "10",
        "--env",
        "E_A=1",
        "--env",
        "E_B=x=y",
        endpoint=server.endpoint,
    )
    assert out.returncode == 0, out.stderr
    assert f"updated {arn}" in out.stdout and "memory 256 MB, timeout 10 s" in out.stdout
    conf = lam.get_function_configuration(FunctionName="deploy_me")
    assert (conf["MemorySize"], conf["Timeout"], conf["LastUpdateStatus"]) == (256, 10, "Successful")
    assert conf["Environment"]["Variables"] == {"E_A": "1", "E_B": "x=y"}
    result = invoke_json(server, "deploy_me", {})
    assert result["version"] == 2 and result["env"] == {"E_A": "1", "E_B": "x=y"}

    # code only: the configuration set before stays
    (root / "lambda_function.py").write_text(source(3))
    out = shoal("deploy", str(root), endpoint=server.endpoint)
    assert out.returncode == 0, out.stderr
    assert lam.get_function_configuration(FunctionName="deploy_me")["MemorySize"] == 256
    assert invoke_json(server, "deploy_me", {})["version"] == 3
    # the package holds the files, not __pycache__
    lam.delete_function(FunctionName="deploy_me")


def test_deploy_zip_file_and_name_flag(server: ShoalServer, tmp_path: Path) -> None:
    package = tmp_path / "zipped-fn.zip"
    package.write_bytes(make_zip({"main.py": source(7).replace("lambda_handler", "run")}))
    out = shoal("deploy", str(package), "--handler", "main.run", *runtime_args(), endpoint=server.endpoint)
    assert out.returncode == 0, out.stderr
    assert "function:zipped-fn" in out.stdout
    assert invoke_json(server, "zipped-fn", {})["version"] == 7
    out = shoal(
        "deploy",
        str(package),
        "--name",
        "renamed-fn",
        "--handler",
        "main.run",
        "--role",
        ROLE,
        *runtime_args(),
        endpoint=server.endpoint,
    )
    assert out.returncode == 0, out.stderr
    conf = server.client("lambda").get_function_configuration(FunctionName="renamed-fn")
    assert conf["Role"] == ROLE
    for name in ("zipped-fn", "renamed-fn"):
        server.client("lambda").delete_function(FunctionName=name)


def test_deploy_errors_are_one_line(server: ShoalServer, tmp_path: Path) -> None:
    line = one_line_error(shoal("deploy", str(tmp_path / "missing"), endpoint=server.endpoint))
    assert "no such file or directory" in line
    not_zip = tmp_path / "code.txt"
    not_zip.write_text("x")
    assert "expected a directory or a .zip file" in one_line_error(
        shoal("deploy", str(not_zip), endpoint=server.endpoint)
    )
    root = tmp_path / "bad_runtime"
    root.mkdir()
    (root / "lambda_function.py").write_text(source(1))
    line = one_line_error(shoal("deploy", str(root), "--runtime", "python2.7", endpoint=server.endpoint))
    assert re.match(r"shoal: (InvalidParameterValueException|ValidationException): ", line), line
    assert "python2.7" in line
    line = one_line_error(shoal("deploy", str(root), "--env", "NOEQUALS", endpoint=server.endpoint))
    assert "KEY=VALUE" in line


# ---- invoke ----


def test_invoke_prints_the_payload(server: ShoalServer, hello: str, tmp_path: Path) -> None:
    out = shoal("invoke", hello, '{"say": "inline"}', endpoint=server.endpoint)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["event"] == {"say": "inline"}
    assert out.stderr == ""

    event_file = tmp_path / "event.json"
    event_file.write_text('{"say": "from a file"}')
    out = shoal("invoke", hello, f"@{event_file}", endpoint=server.endpoint)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["event"] == {"say": "from a file"}

    out = shoal("invoke", hello, "@-", stdin='{"say": "stdin"}', endpoint=server.endpoint)
    assert json.loads(out.stdout)["event"] == {"say": "stdin"}

    out = shoal("invoke", hello, endpoint=server.endpoint)
    assert json.loads(out.stdout)["event"] == {}

    out = shoal("invoke", hello, '{"say": "q"}', "--qualifier", "$LATEST", endpoint=server.endpoint)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["event"] == {"say": "q"}


def test_invoke_tail_prints_the_log_to_stderr(server: ShoalServer, hello: str) -> None:
    out = shoal("invoke", hello, '{"say": "tail me"}', "--tail", endpoint=server.endpoint)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["event"] == {"say": "tail me"}
    assert "printed: tail me" in out.stderr
    assert re.search(r"^START RequestId: \S+ Version: \$LATEST$", out.stderr, re.M), out.stderr
    assert re.search(r"^END RequestId: ", out.stderr, re.M)
    assert re.search(r"^REPORT RequestId: \S+\tDuration: ", out.stderr, re.M)


def test_invoke_function_error_exits_1(server: ShoalServer, hello: str) -> None:
    out = shoal("invoke", hello, '{"fail": true}', endpoint=server.endpoint)
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert out.stdout == ""
    error = json.loads(out.stderr)
    assert error["errorType"] == "ValueError" and error["errorMessage"] == "asked to fail"


def test_invoke_errors_are_one_line(server: ShoalServer, hello: str, tmp_path: Path) -> None:
    line = one_line_error(shoal("invoke", "no-such-function", endpoint=server.endpoint))
    assert line.startswith("shoal: ResourceNotFoundException: Function not found: ")
    line = one_line_error(shoal("invoke", hello, "{not json", endpoint=server.endpoint))
    assert line.startswith("shoal: InvalidRequestContentException: ")
    line = one_line_error(shoal("invoke", hello, f"@{tmp_path / 'nope.json'}", endpoint=server.endpoint))
    assert "cannot read payload file" in line


# ---- functions ----


def test_functions_table(server: ShoalServer, hello: str) -> None:
    out = shoal("functions", endpoint=server.endpoint)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert re.match(r"^NAME +RUNTIME +MEMORY +TIMEOUT +LAST MODIFIED +STATE$", lines[0]), lines[0]
    row = next(ln for ln in lines if ln.startswith(hello + " "))
    cells = re.split(r" {2,}", row)
    assert cells[0] == hello and cells[1] == runtime() and cells[2] == "128 MB" and cells[3] == "3 s"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", cells[4]) and cells[5] == "Active"


def test_functions_follows_pages(server: ShoalServer) -> None:
    """ListFunctions returns at most 50 per page: the table must hold all of them."""
    lam = server.client("lambda")
    code = make_zip({"lambda_function.py": source(0)})
    names = [f"bulk-{i:02d}" for i in range(55)]
    try:
        for name in names:
            lam.create_function(
                FunctionName=name,
                Runtime=runtime(),
                Role=ROLE,
                Handler="lambda_function.lambda_handler",
                Code={"ZipFile": code},
            )
        out = shoal("functions", endpoint=server.endpoint)
        assert out.returncode == 0, out.stderr
        listed = {ln.split()[0] for ln in out.stdout.splitlines()[1:]}
        assert set(names) <= listed
    finally:
        for name in names:
            try:
                lam.delete_function(FunctionName=name)
            except Exception:  # best-effort cleanup of the test's own functions
                pass


# ---- logs ----


def _logs_with(server: ShoalServer, name: str, needle: str, *extra: str) -> list[str]:
    def probe() -> list[str] | None:
        out = shoal("logs", name, *extra, endpoint=server.endpoint)
        return out.stdout.splitlines() if out.returncode == 0 and needle in out.stdout else None

    return poll_until(probe, timeout=20, what=f"{needle!r} in `shoal logs {name}`")


def test_logs_prints_the_function_log(server: ShoalServer, hello: str) -> None:
    request_id = invoke_json(server, hello, {"say": "for the log"})["request"]
    lines = _logs_with(server, hello, f"REPORT RequestId: {request_id}")
    mine = [ln for ln in lines if request_id in ln]
    assert len(mine) == 3 and all(LINE_RE.match(ln) for ln in mine), mine
    printed = [ln for ln in lines if ln.endswith("printed: for the log")]
    assert len(printed) == 1
    assert any(ln.split(" ", 2)[2].startswith("START RequestId: ") for ln in lines)
    filtered = _logs_with(server, hello, "for the log", "--since", "1h", "--filter-pattern", '"for the log"')
    assert filtered == printed


def test_logs_errors(server: ShoalServer) -> None:
    line = one_line_error(shoal("logs", "never-deployed", endpoint=server.endpoint))
    assert line == "shoal: ResourceNotFoundException: The specified log group does not exist."
    line = one_line_error(shoal("logs", "whatever", "--since", "yesterday-ish", endpoint=server.endpoint))
    assert "--since" in line


def test_logs_follow(server: ShoalServer) -> None:
    lam = server.client("lambda")
    # a brand-new function: its log group does not exist until it runs, and --follow waits for it
    lam.create_function(
        FunctionName="followed",
        Runtime=runtime(),
        Role=ROLE,
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": make_zip({"lambda_function.py": source(1)})},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName="followed", WaiterConfig={"Delay": 1})
    proc = subprocess.Popen(
        [sys.executable, "-m", "shoal", "logs", "followed", "--follow", "--since", "1m"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=client_env(SHOAL_ENDPOINT=server.endpoint),
    )
    try:
        reader = LineReader(proc.stdout)
        request_ids: list[str] = []
        for word in ("first-marker", "second-marker", "third-marker"):
            rid = invoke_json(server, "followed", {"say": word})["request"]
            request_ids.append(rid)
            printed, report = f"printed: {word}", f"REPORT RequestId: {rid}"
            reader.wait_for(lambda line: line.rstrip().endswith(printed))  # noqa: B023 - used at once
            reader.wait_for(lambda line: report in line)  # noqa: B023 - used at once
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        assert proc.stderr is not None and proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    lines = reader.rest()
    for r in request_ids:
        assert sum(f"START RequestId: {r}" in ln for ln in lines) == 1, lines
        assert sum(f"REPORT RequestId: {r}" in ln for ln in lines) == 1, lines
    assert len(lines) == len(set(lines)), lines
    lam.delete_function(FunctionName="followed")


# ---- no server ----


@pytest.mark.parametrize(
    "args",
    [["functions"], ["invoke", "x", "{}"], ["logs", "x"], ["logs", "x", "--follow"], ["deploy", "DIR"]],
    ids=["functions", "invoke", "logs", "logs-follow", "deploy"],
)
def test_server_down_is_one_line(args: list[str], tmp_path: Path) -> None:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "lambda_function.py").write_text(source(1))
    args = [str(tmp_path / "fn") if a == "DIR" else a for a in args]
    down = f"http://127.0.0.1:{free_port()}"
    for how in ("flag", "env"):
        if how == "flag":
            out = shoal(*args, "--endpoint", down, endpoint="http://127.0.0.1:1", timeout=60)
        else:
            out = shoal(*args, endpoint=down, timeout=60)
        line = one_line_error(out)
        assert line == f"shoal: cannot reach Shoal at {down}: is 'shoal server' running?"
        assert out.stdout == ""


def test_deploy_package_contents(tmp_path: Path) -> None:
    """What ``shoal deploy DIR`` uploads: every file, executable bits kept, no __pycache__."""
    from shoal.cli.commands import zip_directory

    (tmp_path / "lambda_function.py").write_text("x = 1\n")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "tool").write_text("#!/bin/sh\n")
    (tmp_path / "bin" / "tool").chmod(0o755)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_bytes(b"")
    import io

    with zipfile.ZipFile(io.BytesIO(zip_directory(tmp_path))) as zf:
        assert sorted(zf.namelist()) == ["bin/tool", "lambda_function.py"]
        assert (zf.getinfo("bin/tool").external_attr >> 16) & 0o111
        assert not (zf.getinfo("lambda_function.py").external_attr >> 16) & 0o111
    assert zip_directory(tmp_path) == zip_directory(tmp_path)  # stable: same code, same CodeSha256

"""``shoal deploy | invoke | functions | logs``: the user's commands, over the public API only (boto3).

Every command talks to ``--endpoint`` (env ``SHOAL_ENDPOINT``, default ``http://127.0.0.1:9000``) like any
AWS client would. Failures are one line on stderr and exit code 2 (``shoal: <ErrorCode>: <message>``, or
``shoal: cannot reach Shoal at <endpoint>: …``); ``shoal invoke`` exits 1 when the *function* failed.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import re
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_ENDPOINT = "http://127.0.0.1:9000"
DEFAULT_REGION = "us-east-1"
DEFAULT_RUNTIME = "python3.12"
DEFAULT_HANDLER = "lambda_function.lambda_handler"
DEFAULT_ROLE = "arn:aws:iam::123456789012:role/shoal-function"
DUMMY_KEY = "shoal"
FOLLOW_INTERVAL = 1.0
FOLLOW_OVERLAP_MS = 2_000  # re-read this much before the newest event seen, for events flushed late
SKIP_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".venv"}


class CommandError(Exception):
    """A failure reported as one line, exit code 2."""


# ---- clients -----------------------------------------------------------------------------------------


def endpoint_of(args: argparse.Namespace) -> str:
    return str(args.endpoint or os.environ.get("SHOAL_ENDPOINT") or DEFAULT_ENDPOINT)


def client(args: argparse.Namespace, service: str, *, read_timeout: float = 60.0, attempts: int = 2) -> Any:
    """A boto3 client for Shoal. Credentials: the usual static ones (environment, shared files) when
    configured, else dummy ones. Providers that would call out to AWS or to an instance metadata service
    are dropped: Shoal accepts any credentials."""
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    resolver = session.get_component("credential_provider")
    for name in (
        "container-role",
        "iam-role",
        "assume-role",
        "assume-role-with-web-identity",
        "sso",
        "custom-process",
        "login",
    ):
        try:
            resolver.remove(name)
        except Exception:  # a provider this botocore does not have
            continue
    creds = session.get_credentials()
    keys: dict[str, str] = {}
    if creds is None:
        keys = {"aws_access_key_id": DUMMY_KEY, "aws_secret_access_key": DUMMY_KEY}
    config = Config(
        connect_timeout=5,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": attempts},
    )
    try:
        return session.create_client(
            service, region_name=args.region, endpoint_url=endpoint_of(args), config=config, **keys
        )
    except ValueError as exc:  # botocore rejects a malformed endpoint URL
        raise CommandError(f"invalid endpoint {endpoint_of(args)!r}: {exc}") from None


def run_reporting_errors(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn every expected failure into one line on stderr and exit code 2 — never a traceback."""

    def wrapper(args: argparse.Namespace) -> int:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionClosedError,
            EndpointConnectionError,
            ParamValidationError,
            ReadTimeoutError,
            WaiterError,
        )

        try:
            return func(args)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = err.get("Code") or "Error"
            message = err.get("Message") or str(exc)
            return _fail(f"{code}: {message}")
        except (EndpointConnectionError, ConnectionClosedError):
            return _fail(f"cannot reach Shoal at {endpoint_of(args)}: is 'shoal server' running?")
        except ReadTimeoutError:
            return _fail(f"Shoal at {endpoint_of(args)} did not answer in time")
        except WaiterError as exc:
            return _fail(_waiter_message(exc))
        except ParamValidationError as exc:
            return _fail(f"invalid parameter: {exc}")
        except BotoCoreError as exc:
            return _fail(str(exc))
        except CommandError as exc:
            return _fail(str(exc))
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:  # e.g. `shoal logs f | head`: stop quietly, also at interpreter exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0

    return wrapper


def _fail(message: str) -> int:
    print("shoal: " + " ".join(message.split()), file=sys.stderr)
    return 2


def _waiter_message(exc: Any) -> str:
    conf = (exc.last_response or {}).get("Configuration") or exc.last_response or {}
    name = conf.get("FunctionName", "function")
    if conf.get("State") == "Failed":
        return f"{name}: State Failed: {conf.get('StateReasonCode', '')} {conf.get('StateReason', '')}"
    if conf.get("LastUpdateStatus") == "Failed":
        return (
            f"{name}: LastUpdateStatus Failed: {conf.get('LastUpdateStatusReasonCode', '')} "
            f"{conf.get('LastUpdateStatusReason', '')}"
        )
    return f"{name}: gave up waiting: {exc}"


# ---- deploy ------------------------------------------------------------------------------------------


def zip_directory(root: Path) -> bytes:
    """The directory's files as a ZIP, in a stable order, keeping the executable bits."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            for filename in sorted(filenames):
                path = Path(dirpath) / filename
                if not path.is_file():
                    continue
                info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, path.read_bytes())
    return buf.getvalue()


def package(path: Path) -> tuple[str, bytes]:
    """(default function name, ZIP bytes) of a directory or a .zip file."""
    if path.is_dir():
        return path.resolve().name, zip_directory(path)
    if path.is_file() and path.suffix.lower() == ".zip":
        return path.stem, path.read_bytes()
    if not path.exists():
        raise CommandError(f"{path}: no such file or directory")
    raise CommandError(f"{path}: expected a directory or a .zip file")


def parse_env(pairs: list[str] | None) -> dict[str, str] | None:
    if pairs is None:
        return None
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--env expects KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def _config_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if args.runtime is not None:
        changes["Runtime"] = args.runtime
    if args.handler is not None:
        changes["Handler"] = args.handler
    if args.memory is not None:
        changes["MemorySize"] = args.memory
    if args.timeout is not None:
        changes["Timeout"] = args.timeout
    if args.role is not None:
        changes["Role"] = args.role
    env = parse_env(args.env)
    if env is not None:
        changes["Environment"] = {"Variables": env}
    return changes


def _exists(lam: Any, name: str) -> bool:
    try:
        lam.get_function_configuration(FunctionName=name)
    except lam.exceptions.ResourceNotFoundException:
        return False
    return True


def cmd_deploy(args: argparse.Namespace) -> int:
    default_name, code = package(Path(args.path))
    name = args.name or default_name
    changes = _config_changes(args)
    lam = client(args, "lambda", read_timeout=300)
    waiter_config = {"Delay": 1, "MaxAttempts": 600}
    if not _exists(lam, name):
        lam.create_function(
            FunctionName=name,
            Code={"ZipFile": code},
            **{
                "Runtime": DEFAULT_RUNTIME,
                "Handler": DEFAULT_HANDLER,
                "Role": DEFAULT_ROLE,
                **changes,
            },
        )
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=waiter_config)
        action = "created"
    else:
        updated = lam.get_waiter("function_updated_v2")
        updated.wait(FunctionName=name, WaiterConfig=waiter_config)  # an earlier update may still run
        lam.update_function_code(FunctionName=name, ZipFile=code)
        updated.wait(FunctionName=name, WaiterConfig=waiter_config)
        if changes:
            lam.update_function_configuration(FunctionName=name, **changes)
            updated.wait(FunctionName=name, WaiterConfig=waiter_config)
        action = "updated"
    conf = lam.get_function_configuration(FunctionName=name)
    print(f"{action} {conf['FunctionArn']}")
    print(
        f"  runtime {conf.get('Runtime', '-')}, handler {conf.get('Handler', '-')}, "
        f"memory {conf.get('MemorySize')} MB, timeout {conf.get('Timeout')} s"
    )
    print(f"  state {conf.get('State', '-')}, last update {conf.get('LastUpdateStatus', '-')}")
    return 0


# ---- invoke ------------------------------------------------------------------------------------------


def read_payload(spec: str | None) -> bytes:
    if spec is None:
        return b"{}"
    if spec.startswith("@"):
        source = spec[1:]
        if source == "-":
            return sys.stdin.buffer.read()
        try:
            return Path(source).read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read payload file {source}: {exc.strerror}") from None
    return spec.encode()


def _write_out(data: bytes, stream: Any) -> None:
    stream.buffer.write(data if data.endswith(b"\n") or not data else data + b"\n")
    stream.flush()


def cmd_invoke(args: argparse.Namespace) -> int:
    payload = read_payload(args.payload)
    lam = client(args, "lambda", read_timeout=960, attempts=1)  # never re-run a function on a retry
    kwargs: dict[str, Any] = {"FunctionName": args.name, "Payload": payload}
    if args.qualifier:
        kwargs["Qualifier"] = args.qualifier
    if args.tail:
        kwargs["LogType"] = "Tail"
    response = lam.invoke(**kwargs)
    body = response["Payload"].read()
    if args.tail and response.get("LogResult"):
        sys.stderr.write(base64.b64decode(response["LogResult"]).decode("utf-8", "replace"))
        sys.stderr.flush()
    if response.get("FunctionError"):
        _write_out(body, sys.stderr)
        return 1
    _write_out(body, sys.stdout)
    return 0


# ---- functions ---------------------------------------------------------------------------------------


def _short_time(value: str | None) -> str:
    if not value:
        return "-"
    return value.replace("T", " ")[:19]


def cmd_functions(args: argparse.Namespace) -> int:
    lam = client(args, "lambda")
    rows: list[tuple[str, ...]] = []
    for page in lam.get_paginator("list_functions").paginate():
        for fn in page.get("Functions", []):
            state = fn.get("State")
            if state is None:  # ListFunctions leaves the state out on AWS; GetFunctionConfiguration has it
                state = lam.get_function_configuration(FunctionName=fn["FunctionName"]).get("State", "-")
            rows.append(
                (
                    fn["FunctionName"],
                    fn.get("Runtime", "-"),
                    f"{fn.get('MemorySize', '-')} MB",
                    f"{fn.get('Timeout', '-')} s",
                    _short_time(fn.get("LastModified")),
                    str(state),
                )
            )
    header = ("NAME", "RUNTIME", "MEMORY", "TIMEOUT", "LAST MODIFIED", "STATE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *sorted(rows)]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


# ---- logs --------------------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def since_millis(value: str, now: float | None = None) -> int:
    """``10m``, ``2h``, ``30s``, ``1d``, ``1w`` ago, or an ISO 8601 time, as epoch ms."""
    now = time.time() if now is None else now
    match = _RELATIVE.match(value.strip())
    if match:
        return int((now - int(match.group(1)) * _UNIT_SECONDS[match.group(2)]) * 1000)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"--since expects e.g. 10m, 2h, 1d or an ISO 8601 time, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def format_event(event: dict[str, Any]) -> str:
    ts = datetime.fromtimestamp(event["timestamp"] / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return f"{ts} {event['logStreamName']} {event['message'].rstrip()}"


def group_of(name: str) -> str:
    """The log group of a function name or ARN; a name starting with ``/`` is a log group already."""
    if name.startswith("/"):
        return name
    if name.startswith("arn:"):  # arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
        parts = name.split(":")
        if len(parts) >= 7 and parts[5] == "function":
            name = parts[6]
    return f"/aws/lambda/{name}"


def iter_events(logs: Any, kwargs: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
        yield from page.get("events", [])


def follow_events(
    logs: Any,
    kwargs: dict[str, Any],
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[dict[str, Any]]:
    """Poll forever: each round re-reads from a little before the newest event seen, skipping event ids
    already printed, so events flushed late are not lost and none is printed twice."""
    seen: dict[str, int] = {}
    start = int(kwargs["startTime"])
    while True:
        try:
            events = list(iter_events(logs, {**kwargs, "startTime": start}))
        except logs.exceptions.ResourceNotFoundException:
            events = []  # the function has not logged anything yet: keep waiting for its log group
        for event in events:
            if event["eventId"] not in seen:
                seen[event["eventId"]] = event["timestamp"]
                yield event
        if seen:
            start = max(start, max(seen.values()) - FOLLOW_OVERLAP_MS)
            seen = {k: ts for k, ts in seen.items() if ts >= start}
        sleep(FOLLOW_INTERVAL)


def cmd_logs(args: argparse.Namespace) -> int:
    logs = client(args, "logs")
    kwargs: dict[str, Any] = {
        "logGroupName": group_of(args.name),
        "interleaved": True,
        "startTime": since_millis(args.since),
    }
    if args.filter_pattern:
        kwargs["filterPattern"] = args.filter_pattern
    try:
        events = follow_events(logs, kwargs) if args.follow else iter_events(logs, kwargs)
        for event in events:
            print(format_event(event), flush=args.follow)
    except KeyboardInterrupt:
        return 0
    return 0


# ---- registration ------------------------------------------------------------------------------------


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--endpoint", default=None, help=f"Shoal's URL [env SHOAL_ENDPOINT; default {DEFAULT_ENDPOINT}]"
    )
    common.add_argument(
        "--region", default=DEFAULT_REGION, help=f"region to sign requests for [default {DEFAULT_REGION}]"
    )
    return common


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = _common()

    p = subparsers.add_parser(
        "deploy",
        parents=[common],
        help="create or update a function from a directory or zip",
        description="Create the function, or update its code and then its configuration. "
        "Configuration flags left out keep their current values on update.",
    )
    p.add_argument("path", help="a directory (zipped in memory) or a .zip file")
    p.add_argument("--name", help="function name [default: the directory name or the zip's stem]")
    p.add_argument("--runtime", help=f"runtime id [default on create: {DEFAULT_RUNTIME}]")
    p.add_argument("--handler", help=f"handler [default on create: {DEFAULT_HANDLER}]")
    p.add_argument("--memory", type=int, metavar="MB", help="memory size in MB [default on create: 128]")
    p.add_argument("--timeout", type=int, metavar="SECONDS", help="timeout in seconds [default on create: 3]")
    p.add_argument(
        "--env",
        action="append",
        metavar="KEY=VALUE",
        help="environment variable (repeatable); replaces all variables on update",
    )
    p.add_argument("--role", help=f"execution role ARN [default on create: {DEFAULT_ROLE}]")
    p.set_defaults(func=run_reporting_errors(cmd_deploy))

    p = subparsers.add_parser(
        "invoke",
        parents=[common],
        help="invoke a function and print its result",
        description="Exit 0 with the result on stdout, or 1 with the function's error JSON on stderr.",
    )
    p.add_argument("name", help="function name or ARN")
    p.add_argument("payload", nargs="?", help="JSON event, @FILE, or @- for stdin [default: {}]")
    p.add_argument("--qualifier", help="version or alias")
    p.add_argument(
        "--tail", action="store_true", help="print the invocation's log tail (last 4 KB) to stderr"
    )
    p.set_defaults(func=run_reporting_errors(cmd_invoke))

    p = subparsers.add_parser("functions", parents=[common], help="list functions")
    p.set_defaults(func=run_reporting_errors(cmd_functions))

    p = subparsers.add_parser(
        "logs",
        parents=[common],
        help="print a function's logs",
        description="Print the events of the function's log group (/aws/lambda/NAME).",
    )
    p.add_argument("name", help="function name, or a log group name starting with /")
    p.add_argument(
        "--since", default="10m", help="how far back: 30s, 10m, 2h, 1d, 1w or an ISO 8601 time [default 10m]"
    )
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events until Ctrl-C")
    p.add_argument("--filter-pattern", help="CloudWatch Logs filter pattern, e.g. ERROR or '?WARN ?ERROR'")
    p.set_defaults(func=run_reporting_errors(cmd_logs))

"""Reserved concurrency and throttling (spec §7) through boto3 and raw HTTP."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from tests.e2e.conftest import error_of, unique_name

SLOW = {
    "app.py": "import time\ndef handler(event, context):\n    time.sleep(event.get('sleep', 0))\n    return 'done'\n"
}


def test_reserved_concurrency_operations(lambda_client: Any, make_function: Any) -> None:
    name = unique_name("rc")
    make_function(name, SLOW)
    assert (
        lambda_client.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions") is None
    )
    assert "Concurrency" not in lambda_client.get_function(FunctionName=name)
    before = lambda_client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    put = lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=5)
    assert put["ReservedConcurrentExecutions"] == 5
    assert lambda_client.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 5
    assert lambda_client.get_function(FunctionName=name)["Concurrency"] == {"ReservedConcurrentExecutions": 5}
    after = lambda_client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    assert after == before - 5
    with pytest.raises(ClientError) as info:
        lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=before)
    status, code, message = error_of(info.value)
    assert (status, code) == (400, "InvalidParameterValueException")
    assert message == (
        "Specified ReservedConcurrentExecutions for function decreases account's "
        "UnreservedConcurrentExecution below its minimum value of [100]."
    )
    lambda_client.delete_function_concurrency(FunctionName=name)
    assert (
        lambda_client.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions") is None
    )


def test_reserved_zero_throttles_every_invocation(
    endpoint: str, lambda_client: Any, make_function: Any
) -> None:
    name = unique_name("rc0")
    make_function(name, SLOW)
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    raw = requests.post(f"{endpoint}/2015-03-31/functions/{name}/invocations", data=b"{}", timeout=30)
    assert raw.status_code == 429
    assert raw.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
    assert raw.headers["Retry-After"] == "1"
    assert raw.json() == {
        "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
        "Type": "User",
        "message": "Rate Exceeded.",
    }
    with pytest.raises(ClientError) as info:
        lambda_client.invoke(FunctionName=name, Payload=b"{}")
    assert error_of(info.value)[:2] == (429, "TooManyRequestsException")
    assert info.value.response.get("Reason") == "ReservedFunctionConcurrentInvocationLimitExceeded"
    # DryRun does not run the function, so it takes no concurrency
    assert lambda_client.invoke(FunctionName=name, InvocationType="DryRun")["StatusCode"] == 204


def test_reserved_concurrency_caps_parallel_invocations(lambda_client: Any, make_function: Any) -> None:
    name = unique_name("rc1")
    make_function(name, SLOW)
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    lambda_client.invoke(FunctionName=name, Payload=b"{}")  # warm, so the slow one starts at once
    results: list[Any] = []
    started = threading.Event()

    def slow() -> None:
        started.set()
        for _ in range(100):  # a quick invocation may take the only slot first: then try again
            try:
                results.append(
                    lambda_client.invoke(FunctionName=name, Payload=json.dumps({"sleep": 2}).encode())
                )
                return
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TooManyRequestsException":
                    raise
                time.sleep(0.01)

    thread = threading.Thread(target=slow)
    thread.start()
    started.wait(5)
    throttled = None
    deadline = time.monotonic() + 10
    while throttled is None and time.monotonic() < deadline and thread.is_alive():
        try:
            lambda_client.invoke(FunctionName=name, Payload=b"{}")
        except ClientError as exc:
            throttled = exc
    thread.join(30)
    assert throttled is not None, "a second concurrent invocation should have been throttled"
    assert error_of(throttled)[:2] == (429, "TooManyRequestsException")
    assert results and results[0]["StatusCode"] == 200 and results[0]["Payload"].read() == b'"done"'
    # once the slow one finished, the slot is free again: the lease is released on every path
    assert lambda_client.invoke(FunctionName=name, Payload=b"{}")["StatusCode"] == 200


def test_burst_of_first_invocations_all_complete(endpoint: str, make_function: Any) -> None:
    """100 concurrent first invocations of a new function: each gets an environment, none hangs."""
    from concurrent.futures import ThreadPoolExecutor

    name = unique_name("burst")
    make_function(
        name,
        {
            "app.py": "import os, time\nPID = os.getpid()\nSTART = time.time()\n"
            "def handler(event, context):\n    time.sleep(0.1)\n"
            "    return context.log_stream_name\n"
        },
    )
    url = f"{endpoint}/2015-03-31/functions/{name}/invocations"

    def call(_: int) -> tuple[int, str]:
        with requests.Session() as session:
            resp = session.post(url, data=b"{}", timeout=120)
            return resp.status_code, resp.text

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=100) as pool:
        results = list(pool.map(call, range(100)))
    elapsed = time.monotonic() - started
    statuses = [status for status, _ in results]
    assert statuses == [200] * 100, {s: statuses.count(s) for s in set(statuses)}
    streams = {body for _, body in results}
    assert len(streams) > 1  # they ran side by side in several environments
    assert elapsed < 120

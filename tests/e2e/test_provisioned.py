"""Provisioned concurrency (spec §7): configuration, READY status, initialised environments, spill-over."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import error_of, function_arn, unique_name

SOURCE = {"app.py": "import os\nINIT_TYPE = os.environ['AWS_LAMBDA_INITIALIZATION_TYPE']\n"
                    "def handler(event, context):\n    return {'init': INIT_TYPE, 'type': os.environ["
                    "'AWS_LAMBDA_INITIALIZATION_TYPE']}\n"}


def wait_ready(client: Any, name: str, qualifier: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        if got["Status"] != "IN_PROGRESS" or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_provisioned_concurrency_lifecycle(lambda_client: Any, make_function: Any) -> None:
    name = unique_name("pc")
    make_function(name, SOURCE)
    version = lambda_client.publish_version(FunctionName=name)["Version"]
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    put = lambda_client.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=2)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert put["RequestedProvisionedConcurrentExecutions"] == 2
    assert put["Status"] in ("IN_PROGRESS", "READY")
    ready = wait_ready(lambda_client, name, "live")
    assert ready["Status"] == "READY"
    assert ready["AllocatedProvisionedConcurrentExecutions"] == 2
    assert ready["AvailableProvisionedConcurrentExecutions"] == 2
    out = json.loads(lambda_client.invoke(FunctionName=name, Qualifier="live")["Payload"].read())
    assert out == {"init": "provisioned-concurrency", "type": "provisioned-concurrency"}
    listed = lambda_client.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"] for c in listed] == [function_arn(name, "live")]
    lambda_client.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="live")
    with pytest.raises(ClientError) as info:
        lambda_client.get_provisioned_concurrency_config(FunctionName=name, Qualifier="live")
    assert error_of(info.value)[:2] == (404, "ProvisionedConcurrencyConfigNotFoundException")
    # without provisioned environments the next cold start is on demand
    lambda_client.update_alias(FunctionName=name, Name="live", FunctionVersion=version, Description="x")
    out = json.loads(lambda_client.invoke(FunctionName=name, Qualifier=version)["Payload"].read())
    assert out["type"] in ("on-demand", "provisioned-concurrency")  # a retiring environment may still serve


def test_provisioned_concurrency_spills_over_to_on_demand(lambda_client: Any, make_function: Any) -> None:
    import threading

    name = unique_name("pcs")
    make_function(name, {"app.py": "import os, time\ndef handler(event, context):\n"
                                   "    time.sleep(event.get('sleep', 0))\n"
                                   "    return os.environ['AWS_LAMBDA_INITIALIZATION_TYPE']\n"})
    version = lambda_client.publish_version(FunctionName=name)["Version"]
    lambda_client.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version,
                                                     ProvisionedConcurrentExecutions=1)
    assert wait_ready(lambda_client, name, version)["Status"] == "READY"
    results: list[str] = []

    def call(sleep: float) -> None:
        resp = lambda_client.invoke(FunctionName=name, Qualifier=version, Payload=json.dumps({"sleep": sleep}))
        results.append(json.loads(resp["Payload"].read()))

    first = threading.Thread(target=call, args=(1.5,))
    first.start()
    deadline = time.monotonic() + 10
    while first.is_alive() and time.monotonic() < deadline:
        call(0)  # while the provisioned environment is busy, these spill over to on-demand ones
        if "on-demand" in results:
            break
    first.join(30)
    assert "provisioned-concurrency" in results and "on-demand" in results, results
    lambda_client.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)


def test_provisioned_concurrency_validation(lambda_client: Any, make_function: Any) -> None:
    name = unique_name("pcv")
    make_function(name, SOURCE)
    with pytest.raises(ClientError) as info:
        lambda_client.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="$LATEST", ProvisionedConcurrentExecutions=1)
    status, code, message = error_of(info.value)
    assert (status, code) == (400, "InvalidParameterValueException") and "unpublished" in message
    version = lambda_client.publish_version(FunctionName=name)["Version"]
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    with pytest.raises(ClientError) as info:
        lambda_client.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=2)
    assert error_of(info.value)[:2] == (400, "InvalidParameterValueException")
    with pytest.raises(ClientError) as info:
        lambda_client.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="nope", ProvisionedConcurrentExecutions=1)
    assert error_of(info.value)[:2] == (404, "ResourceNotFoundException")

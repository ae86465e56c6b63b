"""Versions, aliases (with weighted routing), tags and resource policies through boto3 (spec §1.3)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import error_of, function_arn, make_zip, unique_name

VERSIONED = {"app.py": "import os\nV = '{v}'\n"
             "def handler(event, context):\n"
             "    return {{'code': V, 'version': os.environ['AWS_LAMBDA_FUNCTION_VERSION'],\n"
             "            'arn': context.invoked_function_arn, 'stream': context.log_stream_name}}\n"}


def source(v: str) -> dict[str, str]:
    return {"app.py": VERSIONED["app.py"].format(v=v)}


def invoke(client: Any, name: str, qualifier: str | None = None, **kw: Any) -> tuple[dict[str, Any], Any]:
    args = {"FunctionName": name, **kw}
    if qualifier is not None:
        args["Qualifier"] = qualifier
    resp = client.invoke(**args)
    return resp, json.loads(resp["Payload"].read())


def update_code(client: Any, name: str, files: dict[str, str], **kw: Any) -> dict[str, Any]:
    resp = client.update_function_code(FunctionName=name, ZipFile=make_zip(files), **kw)
    client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    return resp


@pytest.fixture
def versioned(lambda_client: Any, make_function: Any) -> str:
    """A function with versions 1 (code 'one') and 2 (code 'two'); $LATEST holds 'two'."""
    name = unique_name("ver")
    make_function(name, source("one"))
    assert lambda_client.publish_version(FunctionName=name, Description="first")["Version"] == "1"
    update_code(lambda_client, name, source("two"))
    assert lambda_client.publish_version(FunctionName=name)["Version"] == "2"
    return name


def test_publish_version_shape_and_no_change_rule(lambda_client: Any, make_function: Any) -> None:
    name = unique_name("pub")
    created = make_function(name, source("a"))
    v1 = lambda_client.publish_version(FunctionName=name, Description="first release")
    assert v1["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert v1["Version"] == "1"
    assert v1["FunctionArn"] == function_arn(name, "1")
    assert v1["Description"] == "first release"
    assert v1["CodeSha256"] == created["CodeSha256"]
    assert v1["State"] == "Active" and v1["LastUpdateStatus"] == "Successful"
    again = lambda_client.publish_version(FunctionName=name)
    assert again["Version"] == "1"  # nothing changed since version 1: no new version
    lambda_client.update_function_configuration(FunctionName=name, Timeout=5)
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    assert lambda_client.publish_version(FunctionName=name)["Version"] == "2"
    conf = lambda_client.get_function_configuration(FunctionName=name, Qualifier="1")
    assert conf["Timeout"] == 3 and conf["Version"] == "1"  # versions are immutable


def test_publish_preconditions(lambda_client: Any, make_function: Any) -> None:
    name = unique_name("pre")
    make_function(name, source("a"))
    with pytest.raises(ClientError) as info:
        lambda_client.publish_version(FunctionName=name, CodeSha256="AAAA")
    status, code, message = error_of(info.value)
    assert (status, code) == (400, "InvalidParameterValueException") and "CodeSHA256 (AAAA)" in message
    with pytest.raises(ClientError) as info:
        lambda_client.publish_version(FunctionName=name, RevisionId="00000000-0000-0000-0000-000000000000")
    assert error_of(info.value)[:2] == (412, "PreconditionFailedException")


def test_version_numbers_are_never_reused(lambda_client: Any, versioned: str) -> None:
    lambda_client.delete_function(FunctionName=versioned, Qualifier="2")
    with pytest.raises(ClientError) as info:
        lambda_client.get_function(FunctionName=versioned, Qualifier="2")
    assert error_of(info.value)[:2] == (404, "ResourceNotFoundException")
    update_code(lambda_client, versioned, source("three"))
    assert lambda_client.publish_version(FunctionName=versioned)["Version"] == "3"


def test_list_versions(lambda_client: Any, versioned: str) -> None:
    versions = lambda_client.list_versions_by_function(FunctionName=versioned)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
    assert versions[0]["FunctionArn"] == function_arn(versioned, "$LATEST")
    assert versions[1]["FunctionArn"] == function_arn(versioned, "1")
    paged = lambda_client.get_paginator("list_versions_by_function").paginate(
        FunctionName=versioned, PaginationConfig={"PageSize": 1})
    assert [v["Version"] for page in paged for v in page["Versions"]] == ["$LATEST", "1", "2"]


def test_invoke_by_version_runs_that_snapshot(lambda_client: Any, versioned: str) -> None:
    resp, out = invoke(lambda_client, versioned, "1", LogType="Tail")
    assert resp["ExecutedVersion"] == "1"
    assert out["code"] == "one" and out["version"] == "1"
    assert out["arn"] == function_arn(versioned, "1")
    assert "/[1]" in out["stream"]
    assert "Version: 1" in base64.b64decode(resp["LogResult"]).decode()
    resp, out = invoke(lambda_client, f"{versioned}:2")
    assert (resp["ExecutedVersion"], out["code"]) == ("2", "two")
    resp, out = invoke(lambda_client, function_arn(versioned, "1"))
    assert (resp["ExecutedVersion"], out["code"]) == ("1", "one")
    resp, out = invoke(lambda_client, versioned)
    assert (resp["ExecutedVersion"], out["code"], out["version"]) == ("$LATEST", "two", "$LATEST")


def test_publish_on_create_and_update(lambda_client: Any, make_function: Any) -> None:
    name = unique_name("pubc")
    created = make_function(name, source("a"), Publish=True)
    assert created["Version"] == "1"
    updated = lambda_client.update_function_code(FunctionName=name, ZipFile=make_zip(source("b")), Publish=True)
    assert updated["Version"] == "2"
    lambda_client.get_waiter("published_version_active").wait(FunctionName=name, Qualifier="2",
                                                               WaiterConfig={"Delay": 1})
    assert invoke(lambda_client, name, "2")[1]["code"] == "b"


def test_alias_lifecycle_and_invoke(lambda_client: Any, versioned: str) -> None:
    alias = lambda_client.create_alias(FunctionName=versioned, Name="prod", FunctionVersion="1",
                                       Description="production")
    assert alias["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert alias["AliasArn"] == function_arn(versioned, "prod")
    assert (alias["Name"], alias["FunctionVersion"], alias["Description"]) == ("prod", "1", "production")
    assert len(alias["RevisionId"]) == 36
    got = lambda_client.get_alias(FunctionName=versioned, Name="prod")
    assert got["AliasArn"] == alias["AliasArn"]
    resp, out = invoke(lambda_client, versioned, "prod")
    assert resp["ExecutedVersion"] == "1" and out["code"] == "one"
    assert out["arn"] == function_arn(versioned, "prod")  # the ARN as invoked
    assert out["version"] == "1"  # never the alias name
    conf = lambda_client.get_function_configuration(FunctionName=versioned, Qualifier="prod")
    assert conf["Version"] == "1"
    moved = lambda_client.update_alias(FunctionName=versioned, Name="prod", FunctionVersion="2",
                                       RevisionId=got["RevisionId"])
    assert moved["FunctionVersion"] == "2" and moved["RevisionId"] != got["RevisionId"]
    assert invoke(lambda_client, versioned, "prod")[1]["code"] == "two"
    with pytest.raises(ClientError) as info:
        lambda_client.update_alias(FunctionName=versioned, Name="prod", FunctionVersion="1",
                                   RevisionId=got["RevisionId"])
    assert error_of(info.value)[:2] == (412, "PreconditionFailedException")
    lambda_client.create_alias(FunctionName=versioned, Name="beta", FunctionVersion="$LATEST")
    names = [a["Name"] for a in lambda_client.list_aliases(FunctionName=versioned)["Aliases"]]
    assert names == ["beta", "prod"]
    only_two = lambda_client.list_aliases(FunctionName=versioned, FunctionVersion="2")["Aliases"]
    assert [a["Name"] for a in only_two] == ["prod"]
    lambda_client.delete_alias(FunctionName=versioned, Name="beta")
    with pytest.raises(ClientError) as info:
        lambda_client.get_alias(FunctionName=versioned, Name="beta")
    status, code, message = error_of(info.value)
    assert (status, code) == (404, "ResourceNotFoundException")
    assert message == f"Alias not found: {function_arn(versioned, 'beta')}"


def test_alias_validation(lambda_client: Any, versioned: str) -> None:
    def refused(**kw: Any) -> tuple[int, str, str]:
        with pytest.raises(ClientError) as info:
            lambda_client.create_alias(FunctionName=versioned, **kw)
        return error_of(info.value)

    assert refused(Name="123", FunctionVersion="1")[:2] == (400, "ValidationException")
    assert refused(Name="ghost", FunctionVersion="9")[:2] == (404, "ResourceNotFoundException")
    status, code, message = refused(Name="w", FunctionVersion="$LATEST",
                                    RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}})
    assert (status, code) == (400, "InvalidParameterValueException") and "$LATEST" in message
    assert refused(Name="w", FunctionVersion="2",
                   RoutingConfig={"AdditionalVersionWeights": {"1": 1.5}})[:2] == (400, "ValidationException")
    lambda_client.create_alias(FunctionName=versioned, Name="live", FunctionVersion="1")
    assert refused(Name="live", FunctionVersion="2")[:2] == (409, "ResourceConflictException")
    with pytest.raises(ClientError) as info:
        lambda_client.delete_function(FunctionName=versioned, Qualifier="1")
    status, code, message = error_of(info.value)
    assert (status, code) == (409, "ResourceConflictException") and "[live]" in message


def test_weighted_routing_splits_traffic(lambda_client: Any, versioned: str) -> None:
    lambda_client.create_alias(FunctionName=versioned, Name="canary", FunctionVersion="2",
                               RoutingConfig={"AdditionalVersionWeights": {"1": 0.3}})
    n, on_one = 400, 0
    for _ in range(n):
        resp, out = invoke(lambda_client, versioned, "canary")
        assert resp["ExecutedVersion"] == out["version"]
        on_one += out["version"] == "1"
    # binomial(400, 0.3): sd ≈ 9.2 invocations; ±48 is more than 5 sd, so this fails only when routing is wrong
    assert abs(on_one - 0.3 * n) <= 48, on_one
    alias = lambda_client.get_alias(FunctionName=versioned, Name="canary")
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"1": 0.3}}


def test_tags(lambda_client: Any, make_function: Any) -> None:
    name = unique_name("tag")
    make_function(name, source("a"), Tags={"team": "core", "env": "dev"})
    arn = function_arn(name)
    assert lambda_client.get_function(FunctionName=name)["Tags"] == {"team": "core", "env": "dev"}
    lambda_client.tag_resource(Resource=arn, Tags={"env": "prod", "cost": "1"})
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {"team": "core", "env": "prod", "cost": "1"}
    lambda_client.untag_resource(Resource=arn, TagKeys=["team", "cost"])
    assert lambda_client.list_tags(Resource=arn)["Tags"] == {"env": "prod"}
    with pytest.raises(ClientError) as info:
        lambda_client.tag_resource(Resource=function_arn(name, "1"), Tags={"a": "b"})
    assert error_of(info.value)[:2] == (400, "InvalidParameterValueException")
    with pytest.raises(ClientError) as info:
        lambda_client.list_tags(Resource=function_arn(unique_name("missing")))
    assert error_of(info.value)[:2] == (404, "ResourceNotFoundException")


def test_resource_policy(lambda_client: Any, versioned: str) -> None:
    with pytest.raises(ClientError) as info:
        lambda_client.get_policy(FunctionName=versioned)
    assert error_of(info.value)[:2] == (404, "ResourceNotFoundException")
    added = lambda_client.add_permission(
        FunctionName=versioned, StatementId="s3-invoke", Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::my-bucket", SourceAccount="123456789012")
    statement = json.loads(added["Statement"])
    assert statement == {
        "Sid": "s3-invoke", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "lambda:InvokeFunction", "Resource": function_arn(versioned),
        "Condition": {"StringEquals": {"AWS:SourceAccount": "123456789012"},
                      "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::my-bucket"}},
    }
    lambda_client.add_permission(FunctionName=versioned, StatementId="other-account",
                                 Action="lambda:InvokeFunction", Principal="111122223333")
    policy = lambda_client.get_policy(FunctionName=versioned)
    document = json.loads(policy["Policy"])
    assert document["Version"] == "2012-10-17" and document["Id"] == "default"
    assert [s["Sid"] for s in document["Statement"]] == ["s3-invoke", "other-account"]
    assert document["Statement"][1]["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    with pytest.raises(ClientError) as info:
        lambda_client.add_permission(FunctionName=versioned, StatementId="s3-invoke",
                                     Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
    assert error_of(info.value)[:2] == (409, "ResourceConflictException")
    scoped = lambda_client.add_permission(FunctionName=versioned, Qualifier="1", StatementId="v1",
                                          Action="lambda:InvokeFunction", Principal="*")
    assert json.loads(scoped["Statement"])["Resource"] == function_arn(versioned, "1")
    lambda_client.remove_permission(FunctionName=versioned, StatementId="s3-invoke")
    remaining = json.loads(lambda_client.get_policy(FunctionName=versioned)["Policy"])["Statement"]
    assert [s["Sid"] for s in remaining] == ["other-account"]
    with pytest.raises(ClientError) as info:
        lambda_client.remove_permission(FunctionName=versioned, StatementId="s3-invoke")
    assert error_of(info.value)[:2] == (404, "ResourceNotFoundException")


def test_another_accounts_function_needs_a_policy(lambda_client: Any, versioned: str) -> None:
    foreign = f"arn:aws:lambda:us-east-1:999999999999:function:{versioned}"
    with pytest.raises(ClientError) as info:
        lambda_client.invoke(FunctionName=foreign)
    status, code, message = error_of(info.value)
    assert (status, code) == (403, "AccessDeniedException")
    assert "is not authorized to perform: lambda:InvokeFunction" in message
    with pytest.raises(ClientError) as info:
        lambda_client.get_function(FunctionName=foreign)
    assert error_of(info.value)[:2] == (403, "AccessDeniedException")

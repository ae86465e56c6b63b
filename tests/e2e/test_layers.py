"""Lambda layers at the wire (spec §1.3, §4.2, §11): publish, get, get by ARN, list, list versions, delete,
permissions, errors with AWS's codes and messages; and a function that imports a module from /opt/python."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import (
    ACCOUNT,
    REGION,
    ROLE,
    RUNTIME,
    assert_raw_error,
    error_of,
    make_zip,
    raw_request,
    sha256_b64,
    unique_name,
    wait_active,
    wait_updated,
)

NOT_FOUND = "The resource you requested does not exist."
CREATED_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000")
LIB = make_zip({"python/greeting.py": "WHO = 'layer'\n"})


def layer_arn(name: str, version: int | None = None) -> str:
    base = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}"
    return base if version is None else f"{base}:{version}"


def status(resp: dict[str, Any]) -> int:
    return int(resp["ResponseMetadata"]["HTTPStatusCode"])


def refused(call: Callable[[], Any]) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as ei:
        call()
    return error_of(ei.value)


Publish = Callable[..., dict[str, Any]]


@pytest.fixture
def publish(lambda_client: Any) -> Iterator[Publish]:
    """``publish(name, zip_bytes=LIB, **kw)`` → PublishLayerVersion response; versions deleted at teardown."""
    published: list[tuple[str, int]] = []

    def run(name: str, zip_bytes: bytes = LIB, **kw: Any) -> dict[str, Any]:
        resp = lambda_client.publish_layer_version(LayerName=name, Content={"ZipFile": zip_bytes}, **kw)
        published.append((name, resp["Version"]))
        return resp  # type: ignore[no-any-return]

    yield run
    for name, version in published:
        lambda_client.delete_layer_version(LayerName=name, VersionNumber=version)


# ---- publish, get, get by ARN -----------------------------------------------------------------------------


def test_publish_get_and_download(lambda_client: Any, publish: Publish) -> None:
    name = unique_name("layer")
    resp = publish(
        name,
        Description="My Python layer",
        CompatibleRuntimes=["python3.12", "python3.11"],
        CompatibleArchitectures=["x86_64", "arm64"],
        LicenseInfo="MIT",
    )
    assert status(resp) == 201
    content = resp["Content"]
    assert content["CodeSha256"] == sha256_b64(LIB)
    assert content["CodeSize"] == len(LIB)
    assert requests.get(content["Location"], timeout=30).content == LIB
    assert resp["LayerArn"] == layer_arn(name)
    assert resp["LayerVersionArn"] == layer_arn(name, 1)
    assert resp["Version"] == 1
    assert CREATED_DATE.fullmatch(resp["CreatedDate"]), resp["CreatedDate"]
    assert resp["Description"] == "My Python layer"
    assert resp["CompatibleRuntimes"] == ["python3.12", "python3.11"]
    assert resp["CompatibleArchitectures"] == ["x86_64", "arm64"]
    assert resp["LicenseInfo"] == "MIT"

    def same(other: dict[str, Any]) -> None:
        assert status(other) == 200
        for key in ("LayerArn", "LayerVersionArn", "Version", "CreatedDate", "Description", "LicenseInfo"):
            assert other[key] == resp[key], key
        assert other["CompatibleRuntimes"] == resp["CompatibleRuntimes"]
        assert {k: v for k, v in other["Content"].items() if k != "Location"} == {
            "CodeSha256": content["CodeSha256"],
            "CodeSize": content["CodeSize"],
        }
        assert requests.get(other["Content"]["Location"], timeout=30).content == LIB

    same(lambda_client.get_layer_version(LayerName=name, VersionNumber=1))
    same(lambda_client.get_layer_version(LayerName=layer_arn(name), VersionNumber=1))
    same(lambda_client.get_layer_version_by_arn(Arn=layer_arn(name, 1)))


def test_optional_members_are_left_out(lambda_client: Any, publish: Publish) -> None:
    resp = publish(unique_name("layer"))
    assert resp["Description"] == ""
    for key in ("CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo"):
        assert key not in resp, key


def test_version_numbers_are_never_reused(lambda_client: Any, publish: Publish) -> None:
    name = unique_name("layer")
    assert [publish(name)["Version"] for _ in range(3)] == [1, 2, 3]
    deleted = lambda_client.delete_layer_version(LayerName=name, VersionNumber=3)
    assert status(deleted) == 204
    assert refused(lambda: lambda_client.get_layer_version(LayerName=name, VersionNumber=3)) == (
        404,
        "ResourceNotFoundException",
        NOT_FOUND,
    )
    assert refused(lambda: lambda_client.get_layer_version_by_arn(Arn=layer_arn(name, 3)))[0] == 404
    # deleting is idempotent: again, a version that never existed, a layer that never existed
    assert status(lambda_client.delete_layer_version(LayerName=name, VersionNumber=3)) == 204
    assert status(lambda_client.delete_layer_version(LayerName=name, VersionNumber=99)) == 204
    assert status(lambda_client.delete_layer_version(LayerName=unique_name("none"), VersionNumber=1)) == 204
    assert publish(name)["Version"] == 4
    versions = lambda_client.list_layer_versions(LayerName=name)["LayerVersions"]
    assert [v["Version"] for v in versions] == [4, 2, 1]


# ---- lists ------------------------------------------------------------------------------------------------


def test_list_layers_shows_the_latest_matching_version(lambda_client: Any, publish: Publish) -> None:
    name = unique_name("layer")
    publish(name, CompatibleRuntimes=["python3.12"], CompatibleArchitectures=["x86_64"], LicenseInfo="MIT")
    publish(name, CompatibleRuntimes=["nodejs20.x"], CompatibleArchitectures=["arm64"], Description="v2")

    def latest(**filters: Any) -> dict[str, Any] | None:
        pages = lambda_client.get_paginator("list_layers").paginate(**filters)
        found = [item for page in pages for item in page["Layers"] if item["LayerName"] == name]
        assert len(found) <= 1
        return found[0] if found else None

    item = latest()
    assert item is not None
    assert item["LayerArn"] == layer_arn(name)
    assert item["LatestMatchingVersion"] == {
        "LayerVersionArn": layer_arn(name, 2),
        "Version": 2,
        "Description": "v2",
        "CreatedDate": item["LatestMatchingVersion"]["CreatedDate"],
        "CompatibleRuntimes": ["nodejs20.x"],
        "CompatibleArchitectures": ["arm64"],
    }
    by_runtime = latest(CompatibleRuntime="python3.12")
    assert by_runtime is not None and by_runtime["LatestMatchingVersion"]["Version"] == 1
    assert by_runtime["LatestMatchingVersion"]["LicenseInfo"] == "MIT"
    by_arch = latest(CompatibleArchitecture="arm64")
    assert by_arch is not None and by_arch["LatestMatchingVersion"]["Version"] == 2
    assert latest(CompatibleRuntime="python3.12", CompatibleArchitecture="arm64") is None
    lambda_client.delete_layer_version(LayerName=name, VersionNumber=2)
    after = latest()
    assert after is not None and after["LatestMatchingVersion"]["Version"] == 1


def test_list_layer_versions_pages_newest_first(lambda_client: Any, publish: Publish) -> None:
    name = unique_name("layer")
    for _ in range(5):
        publish(name, CompatibleRuntimes=["python3.12"])
    first = lambda_client.list_layer_versions(LayerName=name, MaxItems=2)
    assert [v["Version"] for v in first["LayerVersions"]] == [5, 4]
    assert set(first["LayerVersions"][0]) == {
        "LayerVersionArn",
        "Version",
        "Description",
        "CreatedDate",
        "CompatibleRuntimes",
    }
    second = lambda_client.list_layer_versions(LayerName=name, MaxItems=2, Marker=first["NextMarker"])
    assert [v["Version"] for v in second["LayerVersions"]] == [3, 2]
    last = lambda_client.list_layer_versions(LayerName=name, MaxItems=2, Marker=second["NextMarker"])
    assert [v["Version"] for v in last["LayerVersions"]] == [1]
    assert "NextMarker" not in last
    pages = lambda_client.get_paginator("list_layer_versions").paginate(
        LayerName=name, PaginationConfig={"PageSize": 3}
    )
    assert [v["Version"] for page in pages for v in page["LayerVersions"]] == [5, 4, 3, 2, 1]
    filtered = lambda_client.list_layer_versions(LayerName=name, CompatibleRuntime="nodejs20.x")
    assert filtered["LayerVersions"] == []
    missing = lambda_client.list_layer_versions(LayerName=unique_name("none"))
    assert status(missing) == 200 and missing["LayerVersions"] == []


def test_list_layers_pages_by_name(lambda_client: Any, publish: Publish) -> None:
    names = sorted(unique_name("paged") for _ in range(3))
    for name in names:
        publish(name)
    pages = list(lambda_client.get_paginator("list_layers").paginate(PaginationConfig={"PageSize": 1}))
    assert all(len(page["Layers"]) <= 1 for page in pages)
    listed = [item["LayerName"] for page in pages for item in page["Layers"]]
    assert listed == sorted(listed)
    assert [n for n in listed if n in names] == names


# ---- errors -----------------------------------------------------------------------------------------------


def test_errors_in_aws_words(lambda_client: Any, endpoint: str, publish: Publish) -> None:
    name = unique_name("layer")
    publish(name)
    assert refused(lambda: lambda_client.get_layer_version(LayerName=name, VersionNumber=7)) == (
        404,
        "ResourceNotFoundException",
        NOT_FOUND,
    )
    assert refused(lambda: lambda_client.get_layer_version(LayerName=name, VersionNumber=0)) == (
        400,
        "InvalidParameterValueException",
        "Layer Version Cannot be less than 1",
    )
    assert refused(lambda: lambda_client.delete_layer_version(LayerName=name, VersionNumber=0))[1] == (
        "InvalidParameterValueException"
    )
    got = refused(lambda: lambda_client.get_layer_version(LayerName="bad name", VersionNumber=1))
    assert got == (
        400,
        "ValidationException",
        "1 validation error detected: Value 'bad name' at 'layerName' failed to satisfy constraint: "
        r"Member must satisfy regular expression pattern: (arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:"
        r"\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+",
    )
    got = refused(lambda: lambda_client.get_layer_version_by_arn(Arn=layer_arn(name)))
    assert got[:2] == (400, "ValidationException")
    assert got[2].startswith(f"1 validation error detected: Value '{layer_arn(name)}' at 'arn' failed")
    got = refused(
        lambda: lambda_client.publish_layer_version(
            LayerName=name, Content={"S3Bucket": "bucket", "S3Key": "k.zip"}
        )
    )
    assert got[:2] == (501, "NotImplementedException") and "Content.ZipFile" in got[2]
    got = refused(
        lambda: lambda_client.publish_layer_version(
            LayerName=name, Content={"ZipFile": LIB}, CompatibleRuntimes=["python2.0"]
        )
    )
    assert got[:2] == (400, "ValidationException")
    assert got[2].startswith(
        "1 validation error detected: Value '[python2.0]' at 'compatibleRuntimes' failed to satisfy "
        "constraint: Member must satisfy constraint: [Member must satisfy enum value set: ["
    )
    got = refused(lambda: lambda_client.list_layers(CompatibleArchitecture="sparc"))
    assert got == (
        400,
        "ValidationException",
        "1 validation error detected: Value 'sparc' at 'compatibleArchitecture' failed to satisfy "
        "constraint: Member must satisfy enum value set: [x86_64, arm64]",
    )
    # what botocore would refuse before sending: through raw HTTP
    path = f"/2018-10-31/layers/{name}/versions"
    assert_raw_error(
        raw_request(endpoint, "POST", path, json_body={"Content": {"ZipFile": ""}, "Description": "d" * 257}),
        400,
        "ValidationException",
        f"1 validation error detected: Value '{'d' * 257}' at 'description' failed to satisfy constraint: "
        "Member must have length less than or equal to 256",
    )
    assert_raw_error(
        raw_request(endpoint, "POST", path, json_body={"Content": {}}),
        400,
        "InvalidParameterValueException",
        "Missing Content",
    )
    assert_raw_error(
        raw_request(endpoint, "GET", "/2018-10-31/layers?MaxItems=51"),
        400,
        "ValidationException",
        "1 validation error detected: Value '51' at 'maxItems' failed to satisfy constraint: "
        "Member must have value less than or equal to 50",
    )


def test_hostile_layer_zips_are_refused(lambda_client: Any) -> None:
    name = unique_name("evil")
    evil = make_zip({"../../escape.py": "x = 1\n"})
    got = refused(lambda: lambda_client.publish_layer_version(LayerName=name, Content={"ZipFile": evil}))
    assert got == (
        400,
        "InvalidParameterValueException",
        "Could not unzip uploaded file. Please check your file, then try to upload again. "
        "The entry '../../escape.py' points outside the package.",
    )
    got = refused(
        lambda: lambda_client.publish_layer_version(LayerName=name, Content={"ZipFile": b"not a zip"})
    )
    assert got[:2] == (400, "InvalidParameterValueException")
    assert lambda_client.list_layer_versions(LayerName=name)["LayerVersions"] == []


# ---- permissions ------------------------------------------------------------------------------------------


def test_layer_version_permissions(lambda_client: Any, publish: Publish) -> None:
    name = unique_name("layer")
    publish(name)
    resource = layer_arn(name, 1)
    no_policy = refused(lambda: lambda_client.get_layer_version_policy(LayerName=name, VersionNumber=1))
    assert no_policy == (404, "ResourceNotFoundException", "No policy is associated with the given resource.")

    added = lambda_client.add_layer_version_permission(
        LayerName=name,
        VersionNumber=1,
        StatementId="xaccount",
        Action="lambda:GetLayerVersion",
        Principal="223456789012",
    )
    assert status(added) == 201
    assert added["Statement"] == (
        '{"Sid":"xaccount","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::223456789012:root"},'
        f'"Action":"lambda:GetLayerVersion","Resource":"{resource}"}}'
    )
    org = lambda_client.add_layer_version_permission(
        LayerName=layer_arn(name),
        VersionNumber=1,
        StatementId="org",
        Action="lambda:GetLayerVersion",
        Principal="*",
        OrganizationId="o-t194hfs8cz",
        RevisionId=added["RevisionId"],
    )
    assert org["RevisionId"] != added["RevisionId"]
    assert json.loads(org["Statement"]) == {
        "Sid": "org",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "lambda:GetLayerVersion",
        "Resource": resource,
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-t194hfs8cz"}},
    }
    policy = lambda_client.get_layer_version_policy(LayerName=name, VersionNumber=1)
    assert policy["RevisionId"] == org["RevisionId"]
    document = json.loads(policy["Policy"])
    assert document["Version"] == "2012-10-17" and document["Id"] == "default"
    assert [s["Sid"] for s in document["Statement"]] == ["xaccount", "org"]
    assert document["Statement"][0] == json.loads(added["Statement"])

    def add(**kw: Any) -> Any:
        args = dict(LayerName=name, VersionNumber=1, StatementId="xaccount", Action="lambda:GetLayerVersion")
        args["Principal"] = "*"
        args.update(kw)
        return lambda_client.add_layer_version_permission(**args)

    assert refused(add) == (
        409,
        "ResourceConflictException",
        "The statement id (xaccount) provided already exists. Please provide a new statement id, or remove "
        "the existing statement.",
    )
    stale = (
        412,
        "PreconditionFailedException",
        "The Revision Id provided does not match the latest Revision Id. Call the GetLayerPolicy API to "
        "retrieve the latest Revision Id",
    )
    assert refused(lambda: add(StatementId="new", RevisionId=added["RevisionId"])) == stale
    got = refused(lambda: add(StatementId="new", Action="lambda:InvokeFunction"))
    assert got == (
        400,
        "ValidationException",
        "1 validation error detected: Value 'lambda:InvokeFunction' at 'action' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: lambda:GetLayerVersion",
    )
    got = refused(lambda: add(StatementId="new", Principal="someone"))
    assert got[:2] == (400, "ValidationException") and "at 'principal'" in got[2]
    missing = refused(lambda: add(StatementId="new", VersionNumber=5))
    assert missing == (
        404,
        "ResourceNotFoundException",
        f"Layer version {layer_arn(name, 5)} does not exist.",
    )

    def remove(sid: str, **kw: Any) -> Any:
        return lambda_client.remove_layer_version_permission(
            LayerName=name, VersionNumber=1, StatementId=sid, **kw
        )

    assert refused(lambda: remove("org", RevisionId=added["RevisionId"])) == stale
    assert refused(lambda: remove("nope")) == (
        404,
        "ResourceNotFoundException",
        "Statement nope is not found in resource policy.",
    )
    assert status(remove("org", RevisionId=org["RevisionId"])) == 204
    left = json.loads(lambda_client.get_layer_version_policy(LayerName=name, VersionNumber=1)["Policy"])
    assert [s["Sid"] for s in left["Statement"]] == ["xaccount"]
    assert status(remove("xaccount")) == 204
    assert (
        refused(lambda: lambda_client.get_layer_version_policy(LayerName=name, VersionNumber=1)) == no_policy
    )


# ---- functions with layers (needs the FunctionService wiring) ---------------------------------------------

HANDLER = """
import greeting
import from_site


def handler(event, context):
    return {"greeting": greeting.WHO, "site": from_site.WHO, "file": greeting.__file__}
"""


def _python_version(runtime: str) -> str:
    return runtime.removeprefix("python")


def test_function_imports_a_module_from_a_layer(
    lambda_client: Any, publish: Publish, make_function: Any
) -> None:
    """A function with ``Layers`` imports from /opt/python and /opt/python/lib/pythonX.Y/site-packages; the
    layers are laid over each other in order (the later one wins)."""
    first = publish(unique_name("base"), make_zip({"python/greeting.py": "WHO = 'first'\n"}))
    second = publish(
        unique_name("over"),
        make_zip(
            {
                "python/greeting.py": "WHO = 'second'\n",
                f"python/lib/python{_python_version(RUNTIME)}/site-packages/from_site.py": "WHO = 'site'\n",
            }
        ),
    )
    layers = [first["LayerVersionArn"], second["LayerVersionArn"]]
    name = unique_name("with-layers")
    created = make_function(name, {"app.py": HANDLER}, Layers=layers)
    assert created["Layers"] == [
        {"Arn": first["LayerVersionArn"], "CodeSize": first["Content"]["CodeSize"]},
        {"Arn": second["LayerVersionArn"], "CodeSize": second["Content"]["CodeSize"]},
    ]
    assert lambda_client.get_function(FunctionName=name)["Configuration"]["Layers"] == created["Layers"]
    resp = lambda_client.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in resp, resp["Payload"].read()
    assert json.loads(resp["Payload"].read()) == {
        "greeting": "second",
        "site": "site",
        "file": "/opt/python/greeting.py",
    }


def test_function_layers_are_validated(lambda_client: Any, publish: Publish, cleanup_names: set[str]) -> None:
    name = unique_name("layers-bad")
    layer = unique_name("a")
    a = publish(layer)["LayerVersionArn"]
    a2 = publish(layer)["LayerVersionArn"]

    def create(layers: list[str]) -> tuple[int, str, str]:
        cleanup_names.add(name)
        return refused(
            lambda: lambda_client.create_function(
                FunctionName=name,
                Runtime=RUNTIME,
                Role=ROLE,
                Handler="app.handler",
                Code={"ZipFile": make_zip({"app.py": HANDLER})},
                Layers=layers,
            )
        )

    assert create([a] * 6) == (400, "InvalidParameterValueException", "Cannot reference more than 5 layers.")
    missing = layer_arn(unique_name("none"), 1)
    assert create([missing]) == (
        400,
        "InvalidParameterValueException",
        f"Layer version {missing} does not exist.",
    )
    assert create([a, a2]) == (
        400,
        "InvalidParameterValueException",
        "Two different versions of the same layer are not allowed to be referenced in the same function. "
        f"{a} and {a2} are versions of the same layer.",
    )
    got = create([layer_arn("no-version")])
    assert got[:2] == (400, "ValidationException") and "at 'layers' failed to satisfy constraint" in got[2]


def test_deleted_layer_version_stays_usable_by_its_functions(
    lambda_client: Any, publish: Publish, make_function: Any
) -> None:
    layer = publish(unique_name("kept"), make_zip({"python/greeting.py": "WHO = 'kept'\n"}))
    arn = layer["LayerVersionArn"]
    name = unique_name("keeps-layer")
    make_function(
        name, {"app.py": "import greeting\ndef handler(e, c):\n    return greeting.WHO\n"}, Layers=[arn]
    )
    lambda_client.delete_layer_version(LayerName=arn.split(":")[6], VersionNumber=layer["Version"])
    # the function keeps it, even through an update that re-states it (a cold start follows)
    lambda_client.update_function_configuration(FunctionName=name, Layers=[arn], Timeout=5)
    wait_updated(lambda_client, name)
    resp = lambda_client.invoke(FunctionName=name, Payload=b"{}")
    assert json.loads(resp["Payload"].read()) == "kept"
    # ... but no function may start using it
    other = unique_name("late")
    got = refused(
        lambda: lambda_client.create_function(
            FunctionName=other,
            Runtime=RUNTIME,
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": make_zip({"app.py": HANDLER})},
            Layers=[arn],
        )
    )
    assert got == (400, "InvalidParameterValueException", f"Layer version {arn} does not exist.")
    # and removing the layers from the function works
    updated = lambda_client.update_function_configuration(FunctionName=name, Layers=[])
    assert "Layers" not in updated
    wait_active(lambda_client, name)

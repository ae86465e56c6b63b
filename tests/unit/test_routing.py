import botocore.session
import pytest

from shoal.api.routing import lambda_routes, match


def test_every_model_operation_has_a_route():
    model = botocore.session.get_session().get_service_model("lambda")
    assert {r.operation for r in lambda_routes()} == set(model.operation_names)


@pytest.mark.parametrize(
    ("method", "path", "query", "operation", "params"),
    [
        ("POST", "/2015-03-31/functions", {}, "CreateFunction", {}),
        ("GET", "/2015-03-31/functions", {}, "ListFunctions", {}),
        ("GET", "/2015-03-31/functions/f", {}, "GetFunction", {"FunctionName": "f"}),
        ("POST", "/2015-03-31/functions/f/invocations", {}, "Invoke", {"FunctionName": "f"}),
        ("GET", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af/configuration",
         {}, "GetFunctionConfiguration", {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:f"}),
        ("GET", "/2018-10-31/layers", {"find": "LayerVersion", "Arn": "x"}, "GetLayerVersionByArn", {}),
        ("GET", "/2018-10-31/layers", {}, "ListLayers", {}),
        ("GET", "/2016-08-19/account-settings", {}, "GetAccountSettings", {}),
    ],
)
def test_match(method, path, query, operation, params):
    found = match(method, path, query)
    assert found is not None
    route, got = found
    assert route.operation == operation
    assert got == params


def test_unknown_path_does_not_match():
    assert match("GET", "/nope", {}) is None
    assert match("PATCH", "/2015-03-31/functions", {}) is None

import pytest

from shoal.core.arns import FunctionRef, function_arn, parse_function_ref
from shoal.core.errors import InvalidParameterValueException, ValidationException


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("my-fn", FunctionRef("my-fn")),
        ("my-fn:$LATEST", FunctionRef("my-fn", None, "$LATEST")),
        ("my-fn:prod", FunctionRef("my-fn", None, "prod")),
        ("123456789012:function:my-fn", FunctionRef("my-fn", "123456789012")),
        ("arn:aws:lambda:us-east-1:123456789012:function:my-fn", FunctionRef("my-fn", "123456789012")),
        ("arn:aws:lambda:eu-west-1:123456789012:function:my_fn:7", FunctionRef("my_fn", "123456789012", "7")),
    ],
)
def test_accepted_forms(value, expected):
    assert parse_function_ref(value) == expected


@pytest.mark.parametrize("value", ["bad name", "", "a" * 141, "x/y", "fn:"])
def test_rejected_with_aws_wording(value):
    with pytest.raises(ValidationException) as info:
        parse_function_ref(value)
    assert info.value.message.startswith("1 validation error detected: Value ")
    assert "at 'functionName' failed to satisfy constraint" in info.value.message


def test_query_qualifier_must_agree():
    assert parse_function_ref("f", query_qualifier="$LATEST").qualifier == "$LATEST"
    assert parse_function_ref("f:1", query_qualifier="1").qualifier == "1"
    with pytest.raises(InvalidParameterValueException, match="does not match"):
        parse_function_ref("f:1", query_qualifier="2")


def test_function_arn():
    assert function_arn("us-east-1", "123456789012", "f") == "arn:aws:lambda:us-east-1:123456789012:function:f"
    assert function_arn("us-east-1", "123456789012", "f", "$LATEST").endswith(":function:f:$LATEST")

import pytest

from shoal.control import validation as v
from shoal.core.errors import InvalidParameterValueException, ValidationException


def problems_of(body):
    p = v.Problems()
    v.check_common(p, body)
    return p.items


def test_ranges_with_aws_wording():
    assert problems_of({"Timeout": 0}) == [
        "Value '0' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to 1"]
    assert problems_of({"Timeout": 901}) == [
        "Value '901' at 'timeout' failed to satisfy constraint: Member must have value less than or equal to 900"]
    assert problems_of({"MemorySize": 127, "EphemeralStorage": {"Size": 10241}}) == [
        "Value '127' at 'memorySize' failed to satisfy constraint: Member must have value greater than or equal to 128",
        "Value '10241' at 'ephemeralStorage.size' failed to satisfy constraint: Member must have value less than or "
        "equal to 10240",
    ]


def test_multiple_problems_are_one_exception():
    p = v.Problems()
    v.check_common(p, {"Timeout": 0, "MemorySize": 99999})
    with pytest.raises(ValidationException) as info:
        p.raise_if_any()
    assert info.value.message.startswith("2 validation errors detected: Value '0' at 'timeout'")
    assert "; Value '99999' at 'memorySize'" in info.value.message


def test_wrong_type_is_refused():
    with pytest.raises(InvalidParameterValueException, match="must be an integer"):
        problems_of({"Timeout": "3"})


def test_runtime_enum_and_handler_pattern():
    assert problems_of({"Runtime": "python2.0"})[0].startswith(
        "Value 'python2.0' at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [nodejs,")
    assert "Member must satisfy regular expression pattern" in problems_of({"Handler": "a b"})[0]


def test_reserved_environment_keys():
    p = v.Problems()
    with pytest.raises(InvalidParameterValueException) as info:
        v.check_environment(p, {"Variables": {"AWS_REGION": "x", "OK": "1", "LAMBDA_TASK_ROOT": "y"}})
    assert info.value.message.endswith("Reserved keys used in this request: AWS_REGION, LAMBDA_TASK_ROOT")


def test_environment_4kb_limit_message():
    p = v.Problems()
    with pytest.raises(InvalidParameterValueException) as info:
        v.check_environment(p, {"Variables": {"BIG": "x" * 4100}})
    assert info.value.message.startswith(
        "Lambda was unable to configure your environment variables because the environment variables you have "
        "provided exceeded the 4KB limit. String measured: {\"BIG\":\"xxx")


def test_environment_key_pattern():
    p = v.Problems()
    assert v.check_environment(p, {"Variables": {"1BAD": "x"}}) is None
    assert "Map keys must satisfy constraint" in p.items[0]


def test_empty_environment_is_kept_as_empty():
    assert v.check_environment(v.Problems(), {"Variables": {}}) == {}
    assert v.check_environment(v.Problems(), None) is None

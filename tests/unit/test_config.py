from pathlib import Path

import pytest

from shoal.config import SETTINGS, Config, ConfigError, settings_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_settings_doc_is_current():
    doc = (ROOT / "docs" / "settings.md").read_text()
    assert doc == settings_markdown(), "docs/settings.md is stale: run `python -m shoal.config > docs/settings.md`"


def test_every_setting_is_a_config_field_and_has_help():
    fields = set(Config.__dataclass_fields__)
    assert {s.name for s in SETTINGS} == fields
    assert all(s.help.endswith(".") or s.help.endswith(")") for s in SETTINGS)


def test_precedence_flag_over_env_over_default():
    env = {"SHOAL_PORT": "9100", "SHOAL_REGION": "eu-west-1"}
    config = Config.load({"port": 9200}, environ=env)
    assert config.port == 9200
    assert config.region == "eu-west-1"
    assert config.host == "127.0.0.1"


def test_mapping_setting_parses():
    config = Config.load(environ={"SHOAL_RUNTIMES": "python3.12=/usr/bin/python3.12, python3.11=/x"})
    assert config.runtimes == {"python3.12": "/usr/bin/python3.12", "python3.11": "/x"}


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"SHOAL_PORT": "abc"}, "SHOAL_PORT"),
        ({"SHOAL_SANDBOX": "docker"}, "sandbox must be"),
        ({"SHOAL_ACCOUNT_ID": "12"}, "12 digits"),
        ({"SHOAL_RUNTIMES": "python3.12"}, "KEY=VALUE"),
    ],
)
def test_bad_values_name_the_setting(env, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Config.load(environ=env)


def test_server_help_renders():
    import argparse

    from shoal.config import add_arguments

    parser = argparse.ArgumentParser(prog="shoal server")
    add_arguments(parser)
    text = " ".join(parser.format_help().split())
    assert "--host-memory-mb" in text and "80% of the host" in text

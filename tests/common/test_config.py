from __future__ import annotations

import pytest

from common.config import (
    DEFAULT_GRAPH_URL,
    key_ring,
    load_config,
    log_format_setting,
    redis_url_setting,
)
from common.errors import ConfigError

GOOD = {
    "SKOLSYNK_CLIENT_ID": "app-id",
    "SKOLSYNK_CLIENT_SECRET": "very-secret-value",
    "SKOLSYNK_SECRET_KEY": "0123456789abcdef0123",
}


def test_reads_a_complete_environment_with_defaults() -> None:
    config = load_config(GOOD)
    assert config.client_id == "app-id"
    assert config.client_secret.reveal() == "very-secret-value"
    assert config.graph_url == DEFAULT_GRAPH_URL
    assert config.redis_url.startswith("redis://")


def test_reports_every_missing_and_malformed_variable_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"SKOLSYNK_AUTHORITY": "http://login.example", "REDIS_URL": "nonsense"})
    problems = info.value.problems
    assert any("SKOLSYNK_CLIENT_ID" in p for p in problems)
    assert any("SKOLSYNK_CLIENT_SECRET" in p for p in problems)
    assert any("SKOLSYNK_SECRET_KEY" in p for p in problems)
    assert any("SKOLSYNK_AUTHORITY" in p for p in problems)
    assert any("REDIS_URL" in p for p in problems)
    assert len(problems) == 5


def test_never_shows_secrets() -> None:
    config = load_config(GOOD)
    shown = repr(config) + str(config.describe())
    assert "very-secret-value" not in shown
    assert "0123456789abcdef0123" not in shown
    assert "***" in shown


def test_names_a_ca_bundle_that_does_not_exist(tmp_path: object) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({**GOOD, "SKOLSYNK_CA_BUNDLE": "/nonexistent/ca.pem"})
    assert "SKOLSYNK_CA_BUNDLE" in str(info.value)


def test_previous_secret_keys_are_read_newest_first_and_never_shown() -> None:
    config = load_config(
        {**GOOD, "SKOLSYNK_SECRET_KEY_PREVIOUS": " older-key-0123456789 , oldest-key-0123456789"}
    )
    assert [k.reveal() for k in key_ring(config.secret_key)] == [
        "0123456789abcdef0123",
        "older-key-0123456789",
        "oldest-key-0123456789",
    ]
    shown = repr(config) + str(config.describe())
    assert "older-key" not in shown and "oldest-key" not in shown


def test_a_short_previous_key_and_a_bad_flag_are_named() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(
            {
                **GOOD,
                "SKOLSYNK_SECRET_KEY_PREVIOUS": "short",
                "SKOLSYNK_ALLOW_PRIVATE_PORTALS": "ja",
            }
        )
    assert info.value.problems == [
        "SKOLSYNK_SECRET_KEY_PREVIOUS: key 1 is shorter than 16 characters",
        "SKOLSYNK_ALLOW_PRIVATE_PORTALS must be yes or no (1/0, true/false)",
    ]


@pytest.mark.parametrize(
    ("raw", "allowed"), [("", False), ("no", False), ("yes", True), ("1", True)]
)
def test_private_portals_are_refused_unless_allowed(raw: str, allowed: bool) -> None:
    assert load_config({**GOOD, "SKOLSYNK_ALLOW_PRIVATE_PORTALS": raw}).allow_private_portals is (
        allowed
    )


def test_a_worker_reads_its_log_format_alone_and_an_unknown_one_is_json() -> None:
    assert log_format_setting({"SKOLSYNK_LOG_FORMAT": "text"}) == "text"
    assert log_format_setting({"SKOLSYNK_LOG_FORMAT": "yaml"}) == "json"
    assert log_format_setting({}) == "json"


def test_the_demo_sees_redis_url_only_when_it_is_set() -> None:
    assert redis_url_setting({"REDIS_URL": " redis://db:6380/2 "}) == "redis://db:6380/2"
    assert redis_url_setting({"REDIS_URL": "  "}) is None
    assert redis_url_setting({}) is None

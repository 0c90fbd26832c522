from __future__ import annotations

import pytest

from common.config import DEFAULT_GRAPH_URL, load_config
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

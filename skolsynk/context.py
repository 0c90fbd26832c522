"""The pieces every command needs, built on first use from the environment."""

from __future__ import annotations

from functools import cache

from common.config import load_config
from common.services import Services, build_services


@cache
def services() -> Services:
    """This process's services (configuration read once; ``ConfigError`` lists every problem)."""
    return build_services(load_config())

"""JSON log lines keep the traceback of an error, with anything secret in it scrubbed."""

from __future__ import annotations

import io
import json
import logging

from common.logs import JsonFormatter


def _fail_with_secrets() -> None:
    url = "redis://:hunter2-redis@redis.example:6379/0"
    raise RuntimeError(f"could not reach {url} with Bearer eyJ.secret.token (client_secret=xyz)")


def test_an_error_that_ends_a_job_is_logged_with_its_traceback_and_no_secret() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.tracebacks")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        _fail_with_secrets()
    except RuntimeError:
        logger.exception("job failed")
    finally:
        logger.removeHandler(handler)
    line = json.loads(out.getvalue())
    assert line["event"] == "job failed"
    assert "in _fail_with_secrets" in line["traceback"]
    assert "RuntimeError" in line["error"]
    text = out.getvalue()
    for secret in ("hunter2-redis", "eyJ.secret.token", "xyz"):
        assert secret not in text
    assert "redis.example" in line["traceback"]  # the rest of the sentence stays readable

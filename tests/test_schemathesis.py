"""Property-based API testing from /openapi.json (schemathesis), bounded for the default
suite: no 5xx, and every response conforms to the documented status codes, content
types and schemas."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import positive_data_acceptance

from service.app import create_app
from service.jobs.lease import WorkerStore
from service.settings import ServiceSettings
from tests.conftest import ZOO
from tests.fuzz_stats import count

EXAMPLES = 25  # per operation (derandomized: the same cases every run)
SLOW_EXAMPLES = 1000  # per operation in `make test-slow` (12 operations: 12,000 cases)


def _app_schema() -> schemathesis.BaseSchema:
    # Loaded at collection (schemathesis' from_fixture breaks on this pytest); the data
    # directory is a fresh temporary one.
    data = Path(tempfile.mkdtemp(prefix="fwadvisor-st-"))
    settings_ = ServiceSettings(
        data_dir=data, zoo_dir=ZOO, rate_limit_per_minute=0, worker_seen_s=86400
    )
    app = create_app(settings_)
    # a worker that reported, so /v1/ready is 200 (its 503 is a designed answer)
    WorkerStore(settings_.job_db_url()).seen("schemathesis", "localhost", 1, None)
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


schema = _app_schema()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms(case: schemathesis.Case[APIOperation[Any, Any, Any, Any]]) -> None:
    # Every built-in check but "schema-valid data is accepted": the API validates more
    # than JSON Schema can say (a spec's shapes must infer, a zoo name must exist), and
    # answers those with a documented 422 naming the field.
    _call(case)


def _call(case: schemathesis.Case[APIOperation[Any, Any, Any, Any]]) -> None:
    resp = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    count(f"{case.method} {case.path}", resp.status_code)
    assert resp.status_code < 500, resp.text


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=SLOW_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_at_length(case: schemathesis.Case[APIOperation[Any, Any, Any, Any]]) -> None:
    """The fuzz run of issue 19: >= 1000 generated cases per operation, no 5xx."""
    _call(case)

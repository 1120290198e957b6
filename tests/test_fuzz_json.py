"""Hypothesis-generated JSON against every POST endpoint (issue 19): lone surrogates,
NaN and Infinity, huge numbers, deep nesting and odd types, as the whole body and inside
otherwise valid bodies. Never a 5xx; every 4xx is problem+json; and whatever was
accepted, the job list still reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz_stats import count
from tests.test_api import TINY_SPEC, make_app

EXAMPLES = 60  # per test in the default run (derandomized)
POSTS = ("/v1/recommendations", "/v1/jobs", "/v1/specs/validate")

text = st.text(max_size=12) | st.text(
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3
)
numbers = (
    st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, -1, 2**63, 1e308, -0.0, 10**4000])
)
leaf = st.none() | st.booleans() | numbers | text
values = st.recursive(
    leaf,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(text, kids, max_size=4),
    max_leaves=16,
)
TEMPLATES: list[tuple[str, Any]] = [
    ("/v1/recommendations", lambda v: {"model": "mlp", "answers": {"batch_size": v}}),
    ("/v1/recommendations", lambda v: {"model": "mlp", "answers": v}),
    ("/v1/recommendations", lambda v: {"model": v, "mode": "predict"}),
    ("/v1/recommendations", lambda v: {"spec": {**TINY_SPEC, "description": v}}),
    ("/v1/jobs", lambda v: {"kind": "probe", "model": "mlp", "batches": v}),
    ("/v1/jobs", lambda v: {"kind": "tune", "spec": {**TINY_SPEC, "description": v}}),
    ("/v1/jobs", lambda v: {"kind": v, "model": "mlp"}),
    ("/v1/jobs", lambda v: {"kind": "zoo", "models": v, "max_minutes": v}),
    ("/v1/specs/validate", lambda v: {"spec": v}),
    ("/v1/specs/validate", lambda v: {"spec": {**TINY_SPEC, "nodes": [v]}}),
]
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, predictor_cache: Path) -> Flask:
    data = tmp_path_factory.mktemp("fuzz")
    (data / "predictor").symlink_to(predictor_cache, target_is_directory=True)
    return make_app(data, rate_limit_per_minute=0)


@pytest.fixture(scope="module")
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as c:
        yield c


def _post(client: FlaskClient, url: str, body: str) -> None:
    r = client.post(url, data=body, content_type="application/json")
    count(f"POST {url} (hypothesis)", r.status_code)
    assert r.status_code < 500, (url, body[:300], r.data[:300])
    if r.status_code >= 400:
        assert r.mimetype == "application/problem+json", r.data
        assert json.loads(r.data)["status"] == r.status_code


def _dumps(v: Any) -> str:
    return json.dumps(v, allow_nan=True)  # NaN, Infinity and \ud800 escapes as sent


@FUZZ
@given(url=st.sampled_from(POSTS), v=values)
def test_any_json_as_the_whole_body(client: FlaskClient, url: str, v: Any) -> None:
    _post(client, url, _dumps(v))


@FUZZ
@given(i=st.integers(0, len(TEMPLATES) - 1), v=values)
def test_any_json_inside_a_valid_body(client: FlaskClient, i: int, v: Any) -> None:
    url, make = TEMPLATES[i]
    _post(client, url, _dumps(make(v)))
    listed = client.get("/v1/jobs?limit=200")  # nothing accepted may break a read
    assert listed.status_code == 200, listed.data[:300]


@FUZZ
@given(
    url=st.sampled_from(POSTS),
    depth=st.integers(1, 3000),
    digits=st.integers(1, 6000),
    opener=st.sampled_from(["[", '{"a":']),
)
def test_deep_nesting_and_long_numbers(
    client: FlaskClient, url: str, depth: int, digits: int, opener: str
) -> None:
    closer = "]" if opener == "[" else "}"
    _post(client, url, opener * depth + "1" * digits + closer * depth)
    _post(client, url, '{"model": "mlp", "trials": ' + "9" * digits + "}")

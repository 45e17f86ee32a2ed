"""Fuzzing the OpenAPI schema with schemathesis: no 5xx, every answer matches the schema.

Checks: no server error; status codes, content types, bodies and headers as documented; and
every operation that needs a token refuses a request without one. (Unknown query parameters
are ignored, as HTTP APIs do, so schemathesis' negative-data check does not apply.)

A bounded number of examples per operation keeps it to seconds; it runs as the operator (who
may call everything) against one service with the SQLite store.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from tests.api.conftest import Running


@pytest.fixture(scope="module")
def api_schema(running_sqlite: Running) -> schemathesis.schemas.BaseSchema:
    return schemathesis.openapi.from_url(f"{running_sqlite.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_answers_match_the_schema(
    case: schemathesis.Case, running_sqlite: Running
) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {running_sqlite.operator}"},
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
            checks.response_headers_conformance,
            checks.ignored_auth,
        ],
    )

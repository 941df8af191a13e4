"""schemathesis against the app's own OpenAPI: no input makes the API answer 500.

Each operation's generated cases run inside one DB test (SQLite and PostgreSQL), so that
the rollback fixture holds; schemathesis's pytest plugin does not fit that fixture.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.auth.factories import make_token
from tests.contacts.factories import make_contact
from toolkit.app import create_app

EXAMPLES_PER_OPERATION = 25


def test_no_generated_input_makes_the_api_fail(session):
    make_contact(session, consent_to={"marketing.line_push": "grant"})
    headers = {"Authorization": f"Bearer {make_token(session, roles=['admin'])}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def call(case):
            response = case.call(headers=headers)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} {case.body!r} -> {response.status_code}: {response.text[:300]}"
            )

        call()

"""Schemathesis against /openapi.json: generated requests never get a 500 or an off-schema answer."""

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.factories import join, make_exercise, push


def real_ids(app: FastAPI) -> dict[str, Any]:
    """A fresh running exercise with a team, a participant and an inject, so paths reach deep code."""
    # Fuzzing the login and join endpoints trips their failure limits; start each operation clean.
    app.state.login_limiter.reset()
    app.state.join_limiter.reset()
    with TestClient(app) as client:
        exercise = make_exercise(client)
        member = join(client, exercise.team(0)["join_code"])
        inject = push(client, exercise)
    return {
        "path": {
            "exercise_id": exercise.id,
            "team_id": exercise.team(0)["id"],
            "inject_id": inject["id"],
            "field": "overview",
        },
        "facilitator": exercise.headers,
        "participant": member["headers"],
    }


def fuzz(operation: Any, ids: dict[str, Any]) -> None:
    """Up to 12 generated requests against one operation, each checked against the schema."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: Any) -> None:
        for name in case.path_parameters or {}:
            if name in ids["path"]:
                case.path_parameters[name] = ids["path"][name]
        headers = ids["participant"] if "/teams/" in case.path else ids["facilitator"]
        # Valid-looking data may still be refused by the rules (409 once the fuzzer has
        # ended the exercise, 404 for an unknown scenario), so "valid data gets 2xx" is off.
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    check()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_no_500_and_answers_match_the_schema(app: FastAPI) -> None:
    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        if operation.path == "/api/exercises/import":
            # The archive's nested schema makes Hypothesis' generation itself inconsistent
            # (FlakyStrategyDefinition); test_archive_roundtrip.py feeds it broken archives instead.
            continue
        fuzz(operation, real_ids(app))

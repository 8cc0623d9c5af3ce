"""Any text a participant can type survives write → read → export (property-based)."""

import io

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from app.export.workbook import clean_text
from app.responses.fields import MAX_VALUE_LENGTH
from app.web.jsonbody import refused_character
from tests.conftest import BOTH_DATABASES
from tests.factories import join, make_exercise, push

# Every code point JSON can carry: control characters, emoji, right-to-left text, combining marks.
values = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=200),
    st.text(
        alphabet=st.characters(exclude_categories=["Cs"]),
        min_size=MAX_VALUE_LENGTH,
        max_size=MAX_VALUE_LENGTH,
    ),
    st.sampled_from(
        ["=1+1", "+SUM(A1)", "-2", "@cmd", "\x00\x01\x1f", "مرحبا", "👩‍💻🔥", "\r\n\t"]
    ),
)


@pytest.mark.parametrize("database_url", BOTH_DATABASES, indirect=True)
def test_any_value_round_trips(app: FastAPI) -> None:
    with TestClient(app) as client:
        exercise = make_exercise(client)
        red = exercise.team(0)
        member = join(client, red["join_code"])
        inject = push(client, exercise)
        url = f"/api/teams/{red['id']}/responses/{inject['id']}/overview"
        state = {"version": 0}

        @given(value=values)
        @settings(
            max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def round_trip(value: str) -> None:
            app.state.edit_limiter.take = lambda _key: None  # this test is about values, not pace
            response = client.put(
                url,
                json={"value": value, "base_version": state["version"]},
                headers=member["headers"],
            )
            if refused_character(value) is not None:
                # Surrogates and noncharacters are no text anyone typed, and XML cannot hold them.
                assert response.status_code == 422
                assert response.json()["code"] == "invalid_character"
                return
            if "\x00" in value:
                # PostgreSQL text cannot hold U+0000, so every backend refuses it alike.
                assert response.status_code == 422
                assert response.json()["code"] == "invalid_character"
                return
            assert response.status_code == 200, response.text
            state["version"] = response.json()["version"]
            assert response.json()["value"] == value
            cells = client.get(
                f"/api/teams/{red['id']}/responses", headers=member["headers"]
            ).json()
            assert [c["value"] for c in cells if c["field"] == "overview"] == [value]
            exported = client.get(
                f"/api/exercises/{exercise.id}/export.xlsx", headers=exercise.headers
            )
            assert exported.status_code == 200
            sheet = load_workbook(io.BytesIO(exported.content))["Red"]
            cell = sheet.cell(row=3, column=5)  # the overview column of the handout layout
            # Characters XLSX cannot hold are dropped and XML reads every line break as "\n";
            # everything else is kept, as text.
            expected = clean_text(value).replace("\r\n", "\n").replace("\r", "\n")
            assert (cell.value or "") == expected
            if cell.value:
                assert cell.data_type == "s"

        round_trip()

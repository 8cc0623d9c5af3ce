"""Run of show over the public API: withdraw, reopen and resubmit, the projector's stage, copy,
delete, and the inject's paused seconds at delivery (SQLite and PostgreSQL)."""

from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.debrief.models import ImprovementAction
from app.eventlog.models import Event
from app.exercises.models import Exercise, Inject, Participant, Team
from app.live.scheduler import FollowupScheduler
from app.responses.models import ResponseCell, Submission
from tests.factories import join, login, make_exercise, push
from tests.test_live_ws import hello, next_message, participant_ws


def _cell_url(team: dict[str, Any], inject: dict[str, Any], field: str = "overview") -> str:
    return f"/api/teams/{team['id']}/responses/{inject['id']}/{field}"


def _events(app: FastAPI, exercise_id: str, type: str) -> list[Event]:
    with Session(app.state.engine) as session:
        return list(
            session.exec(
                select(Event)
                .where(Event.exercise_id == exercise_id, Event.type == type)
                .order_by(col(Event.seq))
            )
        )


# Withdraw


def test_withdrawn_inject_keeps_its_answers_readable_and_refuses_edits(
    client: TestClient, app: FastAPI
) -> None:
    exercise = make_exercise(client)
    red, blue = exercise.team(0), exercise.team(1)
    member = join(client, red["join_code"], "Hanako")
    inject = push(client, exercise, team_ids=[red["id"]])
    assert inject["withdrawn_at"] is None
    url = _cell_url(red, inject)
    assert client.put(url, json={"value": "draft", "base_version": 0}, headers=member["headers"])
    taken_back = client.post(
        f"/api/exercises/{exercise.id}/injects/{inject['id']}/withdraw", headers=exercise.headers
    )
    assert taken_back.status_code == 200, taken_back.text
    assert datetime.fromisoformat(taken_back.json()["withdrawn_at"]).utcoffset() is not None
    assert taken_back.json()["team_ids"] == [red["id"]]
    # Its teams and the facilitators hear of it; other teams do not.
    (event,) = _events(app, exercise.id, "inject_withdrawn")
    assert event.payload["inject_id"] == inject["id"]
    assert event.team_ids == [red["id"]] and blue["id"] not in event.team_ids
    # The answer stays readable; edits and submits get 409 inject_withdrawn.
    cells = client.get(f"/api/teams/{red['id']}/responses", headers=member["headers"]).json()
    assert [c["value"] for c in cells] == ["draft"]
    refused = client.put(url, json={"value": "more", "base_version": 1}, headers=member["headers"])
    assert refused.status_code == 409
    assert refused.json()["code"] == "inject_withdrawn" and refused.json()["detail"]
    submit = client.post(
        f"/api/teams/{red['id']}/injects/{inject['id']}/submit", headers=member["headers"]
    )
    assert (submit.status_code, submit.json()["code"]) == (409, "inject_withdrawn")
    read = client.get(f"/api/teams/{red['id']}/injects", headers=member["headers"]).json()
    assert read[0]["withdrawn_at"] == taken_back.json()["withdrawn_at"]


def test_withdraw_errors(client: TestClient) -> None:
    exercise = make_exercise(client)
    inject = push(client, exercise)
    base = f"/api/exercises/{exercise.id}/injects"
    assert client.post(f"{base}/nope/withdraw", headers=exercise.headers).status_code == 404
    other = login(client, "bob")
    assert client.post(f"{base}/{inject['id']}/withdraw", headers=other).status_code == 404
    member = join(client, exercise.team(0)["join_code"])
    assert client.post(
        f"{base}/{inject['id']}/withdraw", headers=member["headers"]
    ).status_code in (
        401,
        403,
    )
    assert client.post(f"{base}/{inject['id']}/withdraw").status_code == 401
    first = client.post(f"{base}/{inject['id']}/withdraw", headers=exercise.headers)
    assert first.status_code == 200
    again = client.post(f"{base}/{inject['id']}/withdraw", headers=exercise.headers)
    assert (again.status_code, again.json()["code"]) == (409, "inject_withdrawn")
    second = push(client, exercise)
    client.post(f"/api/exercises/{exercise.id}/end", headers=exercise.headers)
    ended = client.post(f"{base}/{second['id']}/withdraw", headers=exercise.headers)
    assert (ended.status_code, ended.json()["code"]) == (409, "exercise_ended")


def test_withdrawn_inject_sends_no_pending_followups(client: TestClient, app: FastAPI) -> None:
    exercise = make_exercise(client)
    parent = push(client, exercise, scenario_id="jnsa-2018-01", auto_followups=True)
    with Session(app.state.engine) as session:
        inject = session.get(Inject, parent["id"])
        assert inject is not None
        delivered_at = inject.delivered_at
    client.post(
        f"/api/exercises/{exercise.id}/injects/{parent['id']}/withdraw", headers=exercise.headers
    )
    scheduler = FollowupScheduler(
        library=app.state.scenarios,
        session_factory=app.state.hub.session,
        clock=lambda: delivered_at + timedelta(hours=2),
    )
    assert scheduler.run_once() == 0


def test_live_edit_of_a_withdrawn_inject_gets_an_error(client: TestClient) -> None:
    exercise = make_exercise(client)
    red = exercise.team(0)
    member = join(client, red["join_code"], "Hanako")
    inject = push(client, exercise)
    client.post(
        f"/api/exercises/{exercise.id}/injects/{inject['id']}/withdraw", headers=exercise.headers
    )
    with participant_ws(client, member) as ws:
        hello(ws)
        ws.send_json(
            {
                "type": "edit",
                "inject_id": inject["id"],
                "field": "press",
                "value": "広報",
                "base_version": 0,
                "client_ref": "w1",
            }
        )
        error = next_message(ws)
        assert (error["type"], error["code"], error["client_ref"]) == (
            "error",
            "inject_withdrawn",
            "w1",
        )
        assert error["detail"]


# Submitted answers: read-only until reopened; every submission kept


def test_submitted_answer_is_read_only_until_reopened(client: TestClient, app: FastAPI) -> None:
    exercise = make_exercise(client)
    red = exercise.team(0)
    member = join(client, red["join_code"], "Hanako")
    mate = join(client, red["join_code"], "Taro")
    inject = push(client, exercise)
    url = _cell_url(red, inject)
    client.put(url, json={"value": "v1", "base_version": 0}, headers=member["headers"])
    submit_url = f"/api/teams/{red['id']}/injects/{inject['id']}/submit"
    reopen_url = f"/api/teams/{red['id']}/injects/{inject['id']}/reopen"
    not_yet = client.post(reopen_url, headers=member["headers"])
    assert (not_yet.status_code, not_yet.json()["code"]) == (409, "not_submitted")
    first = client.post(submit_url, headers=member["headers"]).json()
    refused = client.put(
        url, json={"value": "late note", "base_version": 1}, headers=mate["headers"]
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "submitted")
    assert refused.json()["detail"]
    # A repeated submit while it stands is the same submission (retries are safe).
    assert client.post(submit_url, headers=mate["headers"]).json() == first

    reopened = client.post(reopen_url, headers=mate["headers"])
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["reopened_at"] is not None
    (event,) = _events(app, exercise.id, "submission_reopened")
    assert event.team_ids == [red["id"]]
    assert event.payload["reopened_by"] == "Taro"
    ok = client.put(url, json={"value": "v2", "base_version": 1}, headers=mate["headers"])
    assert ok.status_code == 200

    again = client.post(submit_url, headers=mate["headers"])
    assert again.status_code == 200
    # The first submission stays the team's time to announcement.
    assert again.json() == first
    (submission,) = client.get(
        f"/api/teams/{red['id']}/submissions", headers=member["headers"]
    ).json()
    assert submission["elapsed_s"] == first["elapsed_s"]
    assert submission["submitted_by"] == "Hanako"
    assert submission["reopened_at"] is None
    assert [r["submitted_by"] for r in submission["resubmissions"]] == ["Taro"]
    assert client.put(
        url, json={"value": "v3", "base_version": 2}, headers=member["headers"]
    ).json()["code"] == ("submitted")
    submissions = _events(app, exercise.id, "submission")
    assert len(submissions) == 2
    assert submissions[1].payload["resubmissions"][0]["submitted_by"] == "Taro"


def test_reopen_by_facilitator_and_refusals(client: TestClient) -> None:
    exercise = make_exercise(client)
    red, blue = exercise.team(0), exercise.team(1)
    member = join(client, red["join_code"], "Hanako")
    stranger = join(client, blue["join_code"], "Jiro")
    inject = push(client, exercise)
    client.post(f"/api/teams/{red['id']}/injects/{inject['id']}/submit", headers=member["headers"])
    reopen_url = f"/api/teams/{red['id']}/injects/{inject['id']}/reopen"
    assert client.post(reopen_url, headers=stranger["headers"]).status_code == 403
    assert client.post(reopen_url).status_code == 401
    assert client.post(reopen_url, headers=login(client, "bob")).status_code in (403, 404)
    unknown = f"/api/teams/{red['id']}/injects/nope/reopen"
    assert client.post(unknown, headers=member["headers"]).status_code == 404
    by_facilitator = client.post(reopen_url, headers=exercise.headers)
    assert by_facilitator.status_code == 200
    # Reopening what is open already changes nothing.
    assert client.post(reopen_url, headers=member["headers"]).json() == by_facilitator.json()
    client.post(f"/api/teams/{red['id']}/injects/{inject['id']}/submit", headers=member["headers"])
    client.post(f"/api/exercises/{exercise.id}/end", headers=exercise.headers)
    ended = client.post(reopen_url, headers=member["headers"])
    assert (ended.status_code, ended.json()["code"]) == (409, "exercise_ended")


def test_live_edit_of_a_submitted_answer_gets_an_error(client: TestClient) -> None:
    exercise = make_exercise(client)
    red = exercise.team(0)
    member = join(client, red["join_code"], "Hanako")
    inject = push(client, exercise)
    client.post(f"/api/teams/{red['id']}/injects/{inject['id']}/submit", headers=member["headers"])
    with participant_ws(client, member) as ws:
        snapshot = hello(ws)
        assert snapshot["snapshot"]["submissions"][0]["reopened_at"] is None
        ws.send_json(
            {
                "type": "edit",
                "inject_id": inject["id"],
                "field": "press",
                "value": "広報",
                "base_version": 0,
                "client_ref": "s1",
            }
        )
        error = next_message(ws)
        assert (error["type"], error["code"], error["client_ref"]) == ("error", "submitted", "s1")


# The projector's stage


def test_stage_follows_injects_for_every_team_but_not_team_targeted_ones(
    client: TestClient, app: FastAPI
) -> None:
    exercise = make_exercise(client)
    url = f"/api/exercises/{exercise.id}/stage"
    assert client.get(url, headers=exercise.headers).json()["show"] == "lobby"
    everyone = push(client, exercise)
    stage = client.get(url, headers=exercise.headers).json()
    assert (stage["show"], stage["inject_id"]) == ("inject", everyone["id"])
    one_team = push(client, exercise, team_ids=[exercise.team(0)["id"]])
    assert client.get(url, headers=exercise.headers).json()["inject_id"] == everyone["id"]
    # The facilitator puts it there.
    put = client.put(
        url, json={"show": "inject", "inject_id": one_team["id"]}, headers=exercise.headers
    )
    assert put.status_code == 200, put.text
    assert client.get(url, headers=exercise.headers).json()["inject_id"] == one_team["id"]
    message = client.put(
        url, json={"show": "message", "text": "休憩 10 分"}, headers=exercise.headers
    )
    assert message.json() == {**message.json(), "show": "message", "text": "休憩 10 分"}
    status = client.put(url, json={"show": "status"}, headers=exercise.headers)
    assert client.get(url, headers=exercise.headers).json() == status.json()
    stages = _events(app, exercise.id, "stage")
    assert [e.payload["stage"]["show"] for e in stages] == ["inject", "message", "status"]
    # Facilitators only: an empty audience.
    assert all(e.team_ids == [] for e in stages)
    # A newer inject for every team takes the stage by itself; withdrawn, it gives way.
    newest = push(client, exercise, scenario_id="jnsa-2018-02")
    assert client.get(url, headers=exercise.headers).json()["inject_id"] == newest["id"]
    client.post(
        f"/api/exercises/{exercise.id}/injects/{newest['id']}/withdraw", headers=exercise.headers
    )
    assert client.get(url, headers=exercise.headers).json()["show"] == "status"
    withdrawn = client.put(
        url, json={"show": "inject", "inject_id": newest["id"]}, headers=exercise.headers
    )
    assert (withdrawn.status_code, withdrawn.json()["code"]) == (409, "inject_withdrawn")


def test_stage_refusals(client: TestClient) -> None:
    exercise = make_exercise(client)
    url = f"/api/exercises/{exercise.id}/stage"
    for body in (
        {"show": "curtain"},
        {"show": "inject"},
        {"show": "message"},
        {"show": "message", "text": "   "},
        {"show": "lobby", "text": "x"},
        {"show": "status", "inject_id": "x"},
        {"show": "message", "text": "x" * 2001},
    ):
        refused = client.put(url, json=body, headers=exercise.headers)
        assert refused.status_code == 422, body
        assert refused.json()["code"] == "invalid" and refused.json()["detail"]
    unknown = client.put(
        url, json={"show": "inject", "inject_id": "nope"}, headers=exercise.headers
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "inject_not_found")
    other = make_exercise(client, headers=exercise.headers)
    foreign = push(client, other)
    elsewhere = client.put(
        url, json={"show": "inject", "inject_id": foreign["id"]}, headers=exercise.headers
    )
    assert elsewhere.status_code == 404
    assert client.get(url).status_code == 401
    assert client.get(url, headers=login(client, "bob")).status_code == 404
    member = join(client, exercise.team(0)["join_code"])
    assert client.put(url, json={"show": "lobby"}, headers=member["headers"]).status_code in (
        401,
        403,
    )


def test_facilitator_snapshot_carries_the_stage(client: TestClient) -> None:
    from tests.test_live_ws import facilitator_ws

    exercise = make_exercise(client)
    client.put(
        f"/api/exercises/{exercise.id}/stage",
        json={"show": "message", "text": "ようこそ"},
        headers=exercise.headers,
    )
    with facilitator_ws(client, exercise) as ws:
        stage = hello(ws)["snapshot"]["stage"]
    assert (stage["show"], stage["text"]) == ("message", "ようこそ")


# Copy and delete


def test_copy_is_a_new_draft_with_the_same_teams_and_new_codes(
    client: TestClient, app: FastAPI
) -> None:
    exercise = make_exercise(client, teams=("Red", "Blue", "Green"))
    join(client, exercise.team(0)["join_code"])
    push(client, exercise)
    client.put(
        f"/api/exercises/{exercise.id}/evaluation",
        json={
            "improvement_plan": [
                {"issue": "広報の遅れ", "status": "open"},
                {"issue": "連絡網", "status": "in_progress", "owner": "CISO"},
                {"issue": "済", "status": "done"},
            ]
        },
        headers=exercise.headers,
    )
    copied = client.post(f"/api/exercises/{exercise.id}/copy", json={}, headers=exercise.headers)
    assert copied.status_code == 201, copied.text
    body = copied.json()
    assert body["id"] != exercise.id
    assert body["status"] == "draft"
    assert body["title"] == "Drill（コピー）"
    assert body["locale"] == "ja"
    assert [t["name"] for t in body["teams"]] == ["Red", "Blue", "Green"]
    old_codes = {t["join_code"] for t in exercise.teams}
    assert not old_codes & {t["join_code"] for t in body["teams"]}
    detail = client.get(f"/api/exercises/{body['id']}", headers=exercise.headers).json()
    assert detail["injects"] == []
    assert all(t["participants"] == [] for t in detail["teams"])
    with Session(app.state.engine) as session:
        plan = session.exec(
            select(ImprovementAction)
            .where(ImprovementAction.exercise_id == body["id"])
            .order_by(col(ImprovementAction.position))
        ).all()
    assert [(a.issue, a.status, a.owner) for a in plan] == [
        ("広報の遅れ", "to_verify", ""),
        ("連絡網", "to_verify", "CISO"),
    ]
    named = client.post(
        f"/api/exercises/{exercise.id}/copy", json={"title": "第2回"}, headers=exercise.headers
    )
    assert named.json()["title"] == "第2回"


def test_copy_refusals(client: TestClient) -> None:
    exercise = make_exercise(client)
    url = f"/api/exercises/{exercise.id}/copy"
    assert client.post(url, json={"title": ""}, headers=exercise.headers).status_code == 422
    assert client.post(url, json={"title": "x" * 201}, headers=exercise.headers).status_code == 422
    assert client.post(url, json={}, headers=login(client, "bob")).status_code == 404
    assert client.post(url, json={}).status_code == 401
    missing = client.post("/api/exercises/nope/copy", json={}, headers=exercise.headers)
    assert missing.status_code == 404


def test_delete_draft_or_ended_only(client: TestClient, app: FastAPI) -> None:
    draft = make_exercise(client, start=False)
    assert client.delete(f"/api/exercises/{draft.id}", headers=draft.headers).status_code == 204
    assert client.get(f"/api/exercises/{draft.id}", headers=draft.headers).status_code == 404

    live = make_exercise(client, headers=draft.headers)
    red = live.team(0)
    member = join(client, red["join_code"])
    inject = push(client, live)
    client.put(
        _cell_url(red, inject), json={"value": "x", "base_version": 0}, headers=member["headers"]
    )
    client.post(f"/api/teams/{red['id']}/injects/{inject['id']}/submit", headers=member["headers"])
    url = f"/api/exercises/{live.id}"
    running = client.delete(url, headers=live.headers)
    assert (running.status_code, running.json()["code"]) == (409, "exercise_active")
    client.post(f"{url}/pause", headers=live.headers)
    paused = client.delete(url, headers=live.headers)
    assert (paused.status_code, paused.json()["code"]) == (409, "exercise_active")
    assert client.delete(url, headers=login(client, "bob")).status_code == 404
    assert client.delete(url).status_code == 401
    client.post(f"{url}/resume", headers=live.headers)
    client.post(f"{url}/end", headers=live.headers)
    assert client.delete(url, headers=live.headers).status_code == 204
    with Session(app.state.engine) as session:
        for model in (Exercise, Team, Participant, Inject, ResponseCell, Submission, Event):
            assert session.exec(select(model)).all() == [], model
    # The participant's token went with the exercise.
    assert (
        client.get(f"/api/teams/{red['id']}/injects", headers=member["headers"]).status_code == 401
    )


# Running time


def test_inject_read_carries_the_pauses_before_its_delivery(
    client: TestClient, app: FastAPI
) -> None:
    exercise = make_exercise(client)
    first = push(client, exercise)
    assert first["paused_s_at_delivery"] == 0
    client.post(f"/api/exercises/{exercise.id}/pause", headers=exercise.headers)
    client.post(f"/api/exercises/{exercise.id}/resume", headers=exercise.headers)
    second = push(client, exercise, scenario_id="jnsa-2018-02")
    with Session(app.state.engine) as session:
        stored = session.get(Exercise, exercise.id)
        assert stored is not None
        paused = stored.paused_s
    assert paused > 0
    assert second["paused_s_at_delivery"] == paused
    detail = client.get(f"/api/exercises/{exercise.id}", headers=exercise.headers).json()
    assert [i["paused_s_at_delivery"] for i in detail["injects"]] == [0, paused]

"""Group commit: a batch of edits is judged edit by edit, exactly as single writes are."""

import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import String, cast, text
from sqlmodel import Session, col, select

from app.db import (
    SQLITE_CHUNKS,
    driver_connection,
    insert_many,
    json_text,
    make_engine,
    migrate,
    one_round_trip,
)
from app.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from app.eventlog import service as events
from app.eventlog.models import Event
from app.exercises import service as exercises
from app.exercises.models import Inject, InjectTarget
from app.exercises.schemas import InjectCreate
from app.responses import service as responses
from app.responses.models import ResponseCell, ResponseRevision
from app.responses.service import CellEdit
from tests.conftest import ON_POSTGRES
from tests.factories import join, make_exercise, push


def test_a_batch_applies_in_order_and_refuses_each_bad_edit_alone(client: TestClient) -> None:
    exercise = make_exercise(client, teams=["Red", "Blue"])
    red, blue = exercise.team(0), exercise.team(1)
    hanako = join(client, red["join_code"], "Hanako")
    gone = join(client, red["join_code"], "Gone")
    inject = push(client, exercise, team_ids=[red["id"]])
    removed = client.delete(
        f"/api/exercises/{exercise.id}/participants/{gone['participant_id']}",
        headers=exercise.headers,
    )
    assert removed.status_code == 204

    def edit(**overrides: object) -> CellEdit:
        base: dict[str, object] = {
            "exercise_id": exercise.id,
            "team_id": red["id"],
            "inject_id": inject["id"],
            "field": "overview",
            "value": "v",
            "base_version": 0,
            "author": "Hanako",
            "participant_id": hanako["participant_id"],
        }
        return CellEdit(**{**base, **overrides})  # type: ignore[arg-type]

    batch = [
        edit(value="first"),  # new cell: version 1
        edit(value="second", base_version=1),  # the same cell again, after the first
        edit(value="stale", base_version=1),  # saw version 1, but it is 2 now
        edit(field="cause", value="x" * 5001),  # too long
        edit(field="nonsense"),  # no such field
        edit(team_id=blue["id"]),  # the inject was not delivered to Blue
        edit(field="press", participant_id=gone["participant_id"], author="Gone"),
        edit(exercise_id="no-such-exercise"),
        edit(field="press", value="広報部長"),  # another cell of the same batch
    ]
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        outcomes = responses.write_cells(session, edits=batch)
    assert outcomes[0] == 1
    assert outcomes[1] == 2
    stale = outcomes[2]
    assert isinstance(stale, Conflict)
    assert stale.extra["current"] == {"value": "second", "version": 2, "updated_by": "Hanako"}
    assert isinstance(outcomes[3], Invalid) and outcomes[3].code == "value_too_long"
    assert isinstance(outcomes[4], Invalid) and outcomes[4].code == "unknown_field"
    assert isinstance(outcomes[5], NotFound) and outcomes[5].code == "inject_not_found"
    assert isinstance(outcomes[6], Forbidden) and outcomes[6].code == "participant_removed"
    assert isinstance(outcomes[7], NotFound) and outcomes[7].code == "team_not_found"
    assert outcomes[8] == 1

    with Session(engine) as session:
        cells = {c.field: c for c in session.exec(select(ResponseCell))}
        assert {k: (c.value, c.version) for k, c in cells.items()} == {
            "overview": ("second", 2),
            "press": ("広報部長", 1),
        }
        revisions = session.exec(select(ResponseRevision).order_by(col(ResponseRevision.id))).all()
        assert [(r.field, r.version, r.value) for r in revisions] == [
            ("overview", 1, "first"),
            ("overview", 2, "second"),
            ("press", 1, "広報部長"),
        ]
        logged = session.exec(
            select(Event)
            .where(Event.exercise_id == exercise.id, Event.type == "response")
            .order_by(col(Event.seq))
        ).all()
        assert [(e.payload["field"], e.payload["version"]) for e in logged] == [
            ("overview", 1),
            ("overview", 2),
            ("press", 1),
        ]
        assert all(e.team_ids == [red["id"]] for e in logged)

    # A later batch continues from the stored versions; REST sees the same cell.
    with Session(engine) as session:
        assert responses.write_cells(session, edits=[edit(value="third", base_version=2)]) == [3]
    cells_url = f"/api/teams/{red['id']}/responses"
    read = client.get(cells_url, headers=hanako["headers"]).json()
    assert {c["field"]: c["version"] for c in read} == {"overview": 3, "press": 1}


def test_a_batch_while_paused_refuses_every_edit_and_stores_nothing(client: TestClient) -> None:
    exercise = make_exercise(client)
    red = exercise.team(0)
    hanako = join(client, red["join_code"], "Hanako")
    inject = push(client, exercise)
    paused = client.post(f"/api/exercises/{exercise.id}/pause", headers=exercise.headers)
    assert paused.status_code == 200
    edit = CellEdit(
        exercise_id=exercise.id,
        team_id=red["id"],
        inject_id=inject["id"],
        field="overview",
        value="v",
        base_version=0,
        author="Hanako",
        participant_id=hanako["participant_id"],
    )
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        outcomes = responses.write_cells(session, edits=[edit, edit])
    assert [getattr(o, "code", o) for o in outcomes] == ["not_running", "not_running"]
    with Session(engine) as session:
        assert session.exec(select(ResponseCell)).all() == []


def _first_edits(
    exercise_id: str, team_id: str, inject_id: str, writer: dict[str, Any], fields: tuple[str, ...]
) -> list[CellEdit]:
    """The writer's first edit (version 0 → 1) of each of these fields."""
    return [
        CellEdit(
            exercise_id=exercise_id,
            team_id=team_id,
            inject_id=inject_id,
            field=field,
            value="v",
            base_version=0,
            author="Hanako",
            participant_id=writer["participant_id"],
        )
        for field in fields
    ]


def test_a_batch_rings_the_bell_with_the_seq_before_it(client: TestClient) -> None:
    """Another process tells from the bell whether it missed events: each exercise's newest seq
    from before the batch, read with the batch's context under the exercise's lock."""
    exercise = make_exercise(client, teams=["Red"])
    red = exercise.team(0)
    hanako = join(client, red["join_code"], "Hanako")
    inject = push(client, exercise)
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        before = events.last_seq(session, exercise_id=exercise.id)
    rung: list[events.Committed] = []
    edits = _first_edits(exercise.id, red["id"], inject["id"], hanako, ("overview", "cause"))
    with Session(engine) as session:
        events.listen(session, lambda committed: rung.append(committed))  # type: ignore[arg-type]
        assert responses.write_cells(session, edits=edits) == [1, 1]
    (committed,) = rung
    assert committed.previous_seq == {exercise.id: before}
    seqs = [event.seq for event in committed]
    assert seqs == sorted(seqs) and len(set(seqs)) == 2 and min(seqs) > before  # type: ignore[type-var]
    with Session(engine) as session:
        stored = session.exec(select(Event.seq).where(Event.exercise_id == exercise.id)).all()
    assert sorted(stored)[-2:] == seqs


@pytest.mark.parametrize("checks_token", [False, True], ids=["rest", "socket"])
def test_an_inject_rings_the_bell_with_the_seq_before_it(
    client: TestClient, checks_token: bool
) -> None:
    """The inject reads the exercise's newest seq in its one query: the bell must name it."""
    exercise = make_exercise(client, teams=["Red", "Blue"])
    push(client, exercise)  # events exist before: the seq to name is not 0
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        before = events.last_seq(session, exercise_id=exercise.id)
    assert before > 0
    token = exercise.headers["Authorization"].removeprefix("Bearer ")
    rung: list[events.Committed] = []
    with Session(engine) as session:
        events.listen(session, lambda committed: rung.append(committed))  # type: ignore[arg-type]
        read = exercises.deliver_inject(
            session,
            exercise_id=exercise.id,
            data=InjectCreate(title="Second", body="More."),
            library=client.app.state.scenarios,  # type: ignore[attr-defined]
            owner_token=token if checks_token else None,
        )
    (committed,) = rung
    assert committed.previous_seq == {exercise.id: before}
    (event,) = committed
    assert event.seq is not None and event.seq > before
    assert read.position == 2 and read.team_ids == [t["id"] for t in exercise.teams]


def test_an_inject_stores_what_it_returns_and_rings(client: TestClient) -> None:
    """On PostgreSQL the inject, its targets and its event go past SQLAlchemy (one pipeline):
    what is stored must be what the ORM reads back, with the JSON as SQLAlchemy writes it."""
    exercise = make_exercise(client, teams=["Red", "Blue", "Green"])
    chosen = [exercise.team(2)["id"], exercise.team(0)["id"]]
    engine = client.app.state.engine  # type: ignore[attr-defined]
    rung: list[events.Committed] = []
    with Session(engine) as session:
        events.listen(session, rung.append)  # type: ignore[arg-type]
        read = exercises.deliver_inject(
            session,
            exercise_id=exercise.id,
            data=InjectCreate(scenario_id="jnsa-2018-01", team_ids=chosen, time_limit_s=900),
            library=client.app.state.scenarios,  # type: ignore[attr-defined]
        )
    (committed,) = rung
    (event,) = committed
    with Session(engine) as session:
        inject = session.get(Inject, read.id)
        targets = session.exec(
            select(InjectTarget.team_id).where(InjectTarget.inject_id == read.id)
        )
        target_ids = sorted(targets.all())
        stored = session.exec(select(Event).where(Event.seq == event.seq)).one()
        texts = session.connection().execute(
            select(cast(col(Inject.texts), String)).where(col(Inject.id) == read.id)
        )
        raw_texts = texts.scalar_one()
    assert inject is not None
    assert (inject.position, inject.title, inject.time_limit_s) == (1, read.title, 900)
    assert inject.texts["ja"]["title"] == read.title and inject.texts["en"]["title"]
    assert raw_texts == json_text(inject.texts)  # UTF-8, not \\u escapes, on both databases
    assert target_ids == sorted(chosen) == sorted(read.team_ids)
    assert (stored.type, stored.exercise_id, stored.at) == ("inject", exercise.id, event.at)
    assert sorted(stored.team_ids or []) == sorted(chosen)
    assert stored.payload == event.payload == {"inject": read.model_dump(mode="json")}


def _assert_chain(rung: list[events.Committed], *, exercise_id: str, start: int) -> int:
    """Each bell, in seq order, names the seq of the one before it (the first: `start`), so a
    process that hears every bell never thinks it missed one; the last seq rung."""
    previous = start
    for committed in sorted(rung, key=lambda c: c[0].seq or 0):
        assert committed.previous_seq == {exercise_id: previous}
        previous = committed[-1].seq or 0
    return previous


def test_injects_and_batches_at_once_ring_a_gapless_chain(client: TestClient) -> None:
    """Injects delivered while batches of edits are written into the same exercise (two server
    processes): each takes the exercise's lock, so positions and bells stay in order."""
    exercise = make_exercise(client, teams=["Red", "Blue"])
    red = exercise.team(0)
    first = push(client, exercise)
    writer = join(client, red["join_code"], "Hanako")
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        start = events.last_seq(session, exercise_id=exercise.id)
    rung: list[events.Committed] = []
    rounds = 20

    def deliver() -> None:
        for number in range(rounds):
            with Session(engine) as session:
                events.listen(session, rung.append)  # type: ignore[arg-type]
                exercises.deliver_inject(
                    session,
                    exercise_id=exercise.id,
                    data=InjectCreate(title=f"Inject {number}", body="…"),
                    library=client.app.state.scenarios,  # type: ignore[attr-defined]
                )

    def write() -> None:
        for version in range(rounds):
            edit = CellEdit(
                exercise_id=exercise.id,
                team_id=red["id"],
                inject_id=first["id"],
                field="overview",
                value=f"第{version + 1}版",
                base_version=version,
                author="Hanako",
                participant_id=writer["participant_id"],
            )
            with Session(engine) as session:
                events.listen(session, rung.append)  # type: ignore[arg-type]
                assert responses.write_cells(session, edits=[edit]) == [version + 1]

    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(deliver), pool.submit(write)]:
            done.result()
    assert len(rung) == 2 * rounds
    _assert_chain(rung, exercise_id=exercise.id, start=start)
    with Session(engine) as session:
        positions = session.exec(select(Inject.position).where(Inject.exercise_id == exercise.id))
        assert sorted(positions.all()) == list(range(1, rounds + 2))


def test_a_batch_over_two_exercises_stores_what_it_rings(client: TestClient) -> None:
    """One batch may carry edits of several exercises (the batcher is per process): each
    exercise's events are stored in the batch's order, as the bell carries them."""
    first, second = make_exercise(client, teams=["Red"]), make_exercise(client, teams=["Blue"])
    edits = []
    for exercise in (first, second):
        team = exercise.team(0)
        writer = join(client, team["join_code"], "花子")
        inject = push(client, exercise)
        edits += [
            CellEdit(
                exercise_id=exercise.id,
                team_id=team["id"],
                inject_id=inject["id"],
                field="overview",
                value=value,
                base_version=version,
                author="花子",
                participant_id=writer["participant_id"],
            )
            for version, value in enumerate(("一", "二", "三"))
        ]
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        before = {e.id: events.last_seq(session, exercise_id=e.id) for e in (first, second)}
    rung: list[events.Committed] = []
    with Session(engine) as session:
        events.listen(session, lambda committed: rung.append(committed))  # type: ignore[arg-type]
        assert responses.write_cells(session, edits=edits) == [1, 2, 3, 1, 2, 3]
    (committed,) = rung
    assert committed.previous_seq == before
    with Session(engine) as session:
        stored = session.exec(
            select(Event).where(Event.type == "response").order_by(col(Event.seq))
        ).all()
        cells = session.exec(select(ResponseCell).order_by(col(ResponseCell.team_id))).all()
    assert [(e.seq, e.exercise_id, e.team_ids, e.payload) for e in stored] == [
        (e.seq, e.exercise_id, e.team_ids, e.payload) for e in committed
    ]
    assert [(e.exercise_id, e.payload["value"], e.payload["version"]) for e in stored] == [
        (edit.exercise_id, edit.value, edit.base_version + 1) for edit in edits
    ]
    assert sorted((c.value, c.version) for c in cells) == [("三", 3), ("三", 3)]


# Edits a writer may send in good faith that must still be refused, and the refusal. On
# PostgreSQL a batch is first written as sent, so each is what the write's guard must catch.
_REFUSED = {
    "a teammate saved the cell first": "conflict",
    "a version the cell never had": "conflict",
    "the exercise was paused": "not_running",
    "the writer was removed": "participant_removed",
    "the inject went to another team": "inject_not_found",
    "the team is in another exercise": "team_not_found",
}


@pytest.mark.parametrize("case", list(_REFUSED))
def test_an_edit_refused_after_it_was_sent_stores_nothing_and_spares_the_rest(
    client: TestClient, case: str
) -> None:
    exercise, other = make_exercise(client), make_exercise(client, teams=["Green"])
    red, blue = exercise.team(0), exercise.team(1)
    hanako = join(client, red["join_code"], "Hanako")
    taro = join(client, red["join_code"], "Taro")
    inject = push(client, exercise, team_ids=[red["id"]])
    good = CellEdit(
        exercise_id=exercise.id,
        team_id=red["id"],
        inject_id=inject["id"],
        field="cause",
        value="VPN",
        base_version=0,
        author="Taro",
        participant_id=taro["participant_id"],
    )
    fields: dict[str, object] = {**good.__dict__, "field": "overview", "value": "Hanako's"}
    fields |= {"author": "Hanako", "participant_id": hanako["participant_id"]}
    if case == "a teammate saved the cell first":
        url = f"/api/teams/{red['id']}/responses/{inject['id']}/overview"
        saved = client.put(
            url, json={"value": "Taro's", "base_version": 0}, headers=taro["headers"]
        )
        assert saved.status_code == 200
    elif case == "a version the cell never had":
        fields["base_version"] = 4
    elif case == "the exercise was paused":
        pause = client.post(f"/api/exercises/{exercise.id}/pause", headers=exercise.headers)
        assert pause.status_code == 200
    elif case == "the writer was removed":
        url = f"/api/exercises/{exercise.id}/participants/{hanako['participant_id']}"
        assert client.delete(url, headers=exercise.headers).status_code == 204
    elif case == "the inject went to another team":
        fields["team_id"] = blue["id"]
    else:
        fields["team_id"] = other.team(0)["id"]
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        stored_before = len(session.exec(select(Event)).all())
        revisions_before = len(session.exec(select(ResponseRevision)).all())
    with Session(engine) as session:
        # The refused edit first, then a good one in the same batch.
        outcomes = responses.write_cells(session, edits=[CellEdit(**fields), good])  # type: ignore[arg-type]
    refused, kept = outcomes
    assert isinstance(refused, DomainError) and refused.code == _REFUSED[case]
    paused = case == "the exercise was paused"  # the good edit is refused as well then
    assert kept == 1 or (paused and getattr(kept, "code", None) == "not_running")
    with Session(engine) as session:
        revisions = session.exec(select(ResponseRevision).order_by(col(ResponseRevision.id))).all()
        stored = len(session.exec(select(Event)).all())
        overview = session.get(ResponseCell, (red["id"], inject["id"], "overview"))
    assert [r.author for r in revisions[revisions_before:]] == ([] if paused else ["Taro"])
    assert stored == stored_before + (0 if paused else 1)
    if case == "a teammate saved the cell first":
        assert refused.extra["current"] == {"value": "Taro's", "version": 1, "updated_by": "Taro"}
        assert overview is not None and (overview.value, overview.version) == ("Taro's", 1)
    else:
        assert overview is None


def test_batches_of_two_writers_at_once_ring_a_gapless_chain(client: TestClient) -> None:
    """Batches of one exercise written at the same moment (as two server processes do) commit
    one at a time: each bell names the seq of the batch committed just before it, so a process
    that hears every bell never thinks it missed one, and every edit is stored."""
    exercise = make_exercise(client, teams=["Red", "Blue"])
    inject = push(client, exercise)
    writers = [
        (team, join(client, team["join_code"], f"{team['name']} {field}"), field)
        for team in exercise.teams
        for field in ("overview", "cause", "press")
    ]
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        start = events.last_seq(session, exercise_id=exercise.id)
    rung: list[events.Committed] = []
    rounds = 30

    def write(mine: list[tuple[dict[str, Any], dict[str, Any], str]]) -> None:
        for version in range(rounds):
            edits = [
                CellEdit(
                    exercise_id=exercise.id,
                    team_id=team["id"],
                    inject_id=inject["id"],
                    field=field,
                    value=f"{field} {version + 1}",
                    base_version=version,
                    author=f"{team['name']} {field}",
                    participant_id=writer["participant_id"],
                )
                for team, writer, field in mine
            ]
            with Session(engine) as session:
                events.listen(session, rung.append)  # type: ignore[arg-type]
                assert responses.write_cells(session, edits=edits) == [version + 1] * len(mine)

    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(write, writers[:3]), pool.submit(write, writers[3:])]:
            done.result()
    assert len(rung) == 2 * rounds
    previous = _assert_chain(rung, exercise_id=exercise.id, start=start)
    with Session(engine) as session:
        assert events.last_seq(session, exercise_id=exercise.id) == previous
        cells = session.exec(select(ResponseCell)).all()
    assert sorted((c.value, c.version) for c in cells) == sorted(
        (f"{field} {rounds}", rounds) for _, _, field in writers
    )


def test_insert_many_stores_what_sqlalchemy_would(tmp_path: Path) -> None:
    # A batch's rows go through the driver with their values converted by the columns' own
    # types; what is stored must be byte for byte what SQLAlchemy's executemany stores.
    url = f"sqlite:///{tmp_path / 'many.db'}"
    migrate(url)
    engine = make_engine(url)
    at = datetime(2026, 11, 26, 9, 30, 1, 250, tzinfo=UTC)
    rows = [
        {
            "exercise_id": "x",
            "type": "response",
            "payload": {"value": f'顧客情報 {i} "quoted"', "version": i, "empty": None},
            "team_ids": [f"t{i}", "t"] if i else None,
            "at": at,
        }
        # Past two statements of the largest size, so that every size is used.
        for i in range(2 * SQLITE_CHUNKS[0] + 3)
    ]
    read = "SELECT exercise_id, type, payload, team_ids, at FROM event ORDER BY seq"
    with Session(engine) as session:
        session.connection().exec_driver_sql("PRAGMA defer_foreign_keys=ON")
        session.execute(events._EVENTS.insert(), rows)
        by_sqlalchemy = session.connection().exec_driver_sql(read).all()
        session.connection().exec_driver_sql("DELETE FROM event")
        rowids = insert_many(session, events._INSERT_EVENTS, rows)
        by_statement = session.connection().exec_driver_sql(read).all()
        seqs = session.connection().exec_driver_sql("SELECT seq FROM event ORDER BY seq").all()
        stored = [
            (e.payload, e.team_ids, e.at)
            for e in session.exec(select(Event).order_by(col(Event.seq)))
        ]
        session.rollback()
    engine.dispose()
    assert by_statement == by_sqlalchemy
    assert rowids == [seq for (seq,) in seqs]
    assert stored == [(row["payload"], row["team_ids"], at) for row in rows]


def test_a_large_batch_stores_every_edit_and_its_seq(client: TestClient) -> None:
    """A batch longer than one multi-row statement (SQLite) or with cells both new and stored:
    every edit's revision, event (with the seq it was rung with) and final cell are stored."""
    exercise = make_exercise(client, teams=["Red", "Blue"])
    inject = push(client, exercise)
    fields = ("overview", "affected_customers", "secondary_damage", "cause", "press", "legal")
    writers = {
        team["id"]: join(client, team["join_code"], f"{team['name']} writer")
        for team in exercise.teams
    }
    versions = {(team_id, field): 0 for team_id in writers for field in fields}

    def edits(rounds: int, cells: list[tuple[str, str]]) -> list[CellEdit]:
        batch = []
        for _ in range(rounds):
            for team_id, field in cells:
                batch.append(
                    CellEdit(
                        exercise_id=exercise.id,
                        team_id=team_id,
                        inject_id=inject["id"],
                        field=field,
                        value=f"{field} 第{versions[team_id, field] + 1}版",
                        base_version=versions[team_id, field],
                        author="writer",
                        participant_id=writers[team_id]["participant_id"],
                    )
                )
                versions[team_id, field] += 1
        return batch

    engine = client.app.state.engine  # type: ignore[attr-defined]
    cells = list(versions)
    # The first batch stores half the cells; the second changes those and creates the others.
    first, second = edits(1, cells[::2]), edits(12, cells)
    rung: list[events.Committed] = []
    with Session(engine) as session:
        events.listen(session, rung.append)  # type: ignore[arg-type]
        assert responses.write_cells(session, edits=first) == [1] * len(first)
    with Session(engine) as session:
        events.listen(session, rung.append)  # type: ignore[arg-type]
        outcomes = responses.write_cells(session, edits=second)
    assert len(second) == 144 and outcomes == [e.base_version + 1 for e in second]
    assert rung[1].previous_seq == {exercise.id: rung[0][-1].seq}
    with Session(engine) as session:
        stored = session.exec(
            select(Event).where(Event.type == "response").order_by(col(Event.seq))
        ).all()
        stored_cells = session.exec(select(ResponseCell)).all()
        revisions = session.exec(select(ResponseRevision)).all()
    assert [(e.seq, e.payload) for e in stored] == [
        (e.seq, e.payload) for committed in rung for e in committed
    ]
    assert [e.payload["value"] for e in stored] == [e.value for e in first + second]
    assert {(c.team_id, c.field): (c.version, c.value) for c in stored_cells} == {
        key: (version, f"{key[1]} 第{version}版") for key, version in versions.items()
    }
    assert sorted((r.team_id, r.field, r.version) for r in revisions) == sorted(
        (e.team_id, e.field, e.base_version + 1) for e in first + second
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_batch_on_sqlite_runs_the_same_few_statements_whatever_its_size(
    client: TestClient,
) -> None:
    """Each statement (each row of an executemany) lets go of the GIL, which a worker thread
    waits to get back from a busy event loop: a batch's statements must not grow with its edits."""
    exercise = make_exercise(client, teams=["Red"])
    team = exercise.team(0)
    inject = push(client, exercise)
    writer = join(client, team["join_code"], "Hanako")
    engine = client.app.state.engine  # type: ignore[attr-defined]

    def statements(size: int, start: int) -> int:
        batch = [
            CellEdit(
                exercise_id=exercise.id,
                team_id=team["id"],
                inject_id=inject["id"],
                field="overview",
                value=f"v{start + n}",
                base_version=start + n,
                author="Hanako",
                participant_id=writer["participant_id"],
            )
            for n in range(size)
        ]
        traced: list[str] = []
        with Session(engine) as session:
            driver = session.connection().connection.driver_connection
            driver.set_trace_callback(traced.append)
            try:
                assert responses.write_cells(session, edits=batch)[-1] == start + size
            finally:
                driver.set_trace_callback(None)
        return len(traced)

    small = statements(3, 0)
    large = statements(63, 3)
    # BEGIN, the context, the cell, the revisions and events (a statement of 2 rows and one of
    # 1 each), COMMIT; then at most one more statement of each size for revisions and events.
    assert small == 7
    assert large <= small + 2 * len(SQLITE_CHUNKS)


def _syncs(driver: Any, write: Callable[[], object]) -> int:
    """How many times the client waited for PostgreSQL while `write` ran (libpq's trace)."""
    with tempfile.TemporaryFile("w+") as trace:
        driver.pgconn.trace(trace.fileno())
        try:
            write()
        finally:
            driver.pgconn.untrace()
        trace.seek(0)
        # A wait ends each exchange: a Sync (extended protocol, pipelines) or a simple Query.
        sent = [line.rstrip("\n").split("\t")[1:4:2] for line in trace]
        return sum(message in (["F", "Sync"], ["F", "Query"]) for message in sent)


@pytest.mark.parametrize("database_url", [ON_POSTGRES], indirect=True)
def test_a_batch_on_postgres_is_one_round_trip(client: TestClient) -> None:
    """A batch holds its exercise's lock from its first statement to its commit, and after each
    wait for the server a worker thread on a busy server waits for the GIL: the whole
    transaction, BEGIN to COMMIT, must be one wait."""
    exercise = make_exercise(client, teams=["Red"])
    team = exercise.team(0)
    inject = push(client, exercise)
    writer = join(client, team["join_code"], "Hanako")
    engine = client.app.state.engine  # type: ignore[attr-defined]
    batch = _first_edits(exercise.id, team["id"], inject["id"], writer, ("overview", "cause"))
    with Session(engine) as session:
        driver = driver_connection(session)
        assert _syncs(driver, lambda: responses.write_cells(session, edits=batch)) == 1
        # Back as the pool handed it out: the next user's transaction is a transaction.
        assert driver.autocommit is False
    with Session(engine) as session:
        stored = session.exec(select(ResponseCell.field, ResponseCell.version)).all()
    assert sorted(stored) == [("cause", 1), ("overview", 1)]


@pytest.mark.parametrize("database_url", [ON_POSTGRES], indirect=True)
def test_one_round_trip_commits_nothing_when_a_statement_fails(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            driver = driver_connection(session)
            with (
                pytest.raises(psycopg.errors.DivisionByZero),
                one_round_trip(session) as connection,
            ):
                connection.execute("CREATE TABLE round_trip_probe (a integer)")
                connection.execute("INSERT INTO round_trip_probe VALUES (1)")
                connection.execute("SELECT 1 / 0")
            assert driver.autocommit is False
            assert driver.info.transaction_status.name == "IDLE"
            session.rollback()
        with Session(engine) as session:
            found = session.execute(text("SELECT to_regclass('round_trip_probe')")).scalar()
        assert found is None
    finally:
        engine.dispose()

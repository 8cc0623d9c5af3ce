"""The exercise rules: creation, the state machine, teams, inject delivery and messages."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, Select, bindparam, func
from sqlalchemy import delete as sa_delete
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.auth import service as auth
from app.auth.models import Facilitator, LoginToken
from app.db import driver_connection, driver_params, on_postgres, utcnow
from app.errors import Invalid, InvalidState, NotFound, Unauthorized
from app.eventlog import service as events
from app.eventlog.models import Event
from app.exercises import zones
from app.exercises.models import Exercise, ExerciseStatus, Inject, InjectTarget, Participant, Team
from app.exercises.schemas import (
    ExerciseCreate,
    ExerciseDetail,
    ExerciseRead,
    ExerciseUpdate,
    InjectCreate,
    InjectRead,
    ParticipantRead,
    TeamDetail,
    TeamRead,
)
from app.scenarios.loader import ScenarioLibrary

# The contract's state machine: draft → running → paused ⇄ running → ended.
TRANSITIONS: dict[str, tuple[frozenset[ExerciseStatus], ExerciseStatus]] = {
    "start": (frozenset({ExerciseStatus.draft}), ExerciseStatus.running),
    "pause": (frozenset({ExerciseStatus.running}), ExerciseStatus.paused),
    "resume": (frozenset({ExerciseStatus.paused}), ExerciseStatus.running),
    "end": (frozenset({ExerciseStatus.running}), ExerciseStatus.ended),
}
_JOIN_CODE_ATTEMPTS = 10


def owned_via_token(session: Session, *, token: str, exercise_id: str) -> Exercise | None:
    """The exercise if the token is a live facilitator token of its owner, in one query.

    Every facilitator request about an exercise starts here, the inject's delivery among them;
    None says only that it is not so (the caller finds out why, for the right refusal).
    """
    if not token.startswith(auth.FACILITATOR_TOKEN_PREFIX):
        return None
    return session.exec(
        select(Exercise)
        .join(LoginToken, col(LoginToken.facilitator_id) == col(Exercise.owner_id))
        .where(auth.is_live_token(token), col(Exercise.id) == exercise_id)
    ).first()


def get_owned(session: Session, *, exercise_id: str, owner: Facilitator) -> Exercise:
    """The exercise if this facilitator owns it; others' exercises do not exist for them."""
    exercise = session.get(Exercise, exercise_id)
    if exercise is None or exercise.owner_id != owner.id:
        raise NotFound("No such exercise.", code="exercise_not_found")
    return exercise


def list_owned(session: Session, *, owner: Facilitator) -> list[Exercise]:
    return list(
        session.exec(
            select(Exercise)
            .where(Exercise.owner_id == owner.id)
            .order_by(col(Exercise.created_at).desc())
        )
    )


_INJECT_TARGETS = InjectTarget.__table__  # type: ignore[attr-defined]
_INJECTS = Inject.__table__  # type: ignore[attr-defined]
_TEAMS = Team.__table__  # type: ignore[attr-defined]
_EXERCISES = Exercise.__table__  # type: ignore[attr-defined]
_LOGIN_TOKENS = LoginToken.__table__  # type: ignore[attr-defined]
_TEAM_ORDER = (_TEAMS.c.position, _TEAMS.c.created_at)


def teams_of(session: Session, *, exercise_id: str) -> list[Team]:
    return list(
        session.exec(select(Team).where(Team.exercise_id == exercise_id).order_by(*_TEAM_ORDER))
    )


def team_ids_of(session: Session, *, exercise_id: str) -> list[str]:
    """The ids of teams_of, without loading the rows."""
    return list(
        session.exec(select(Team.id).where(Team.exercise_id == exercise_id).order_by(*_TEAM_ORDER))
    )


def create_exercise(
    session: Session, *, owner: Facilitator, data: ExerciseCreate, library: ScenarioLibrary
) -> Exercise:
    """A new exercise in draft, with its teams and their join codes."""
    assert owner.id is not None
    unknown = [sid for sid in data.scenario_ids or [] if library.get(sid) is None]
    if unknown:
        raise Invalid(f"Unknown scenario ids: {', '.join(unknown[:10])}.", code="unknown_scenario")
    exercise = Exercise(
        owner_id=owner.id,
        title=data.title,
        locale=data.locale,
        time_zone=zones.checked_time_zone(data.time_zone or zones.default_time_zone(data.locale)),
        scenario_ids=list(data.scenario_ids or []),
    )
    session.add(exercise)
    session.flush()
    for position, name in enumerate(data.teams):
        _insert_team(session, exercise=exercise, name=name, position=position)
    session.commit()
    return exercise


def update_exercise(session: Session, *, exercise: Exercise, data: ExerciseUpdate) -> Exercise:
    """Rename an exercise or change its language or time zone, at any status."""
    if data.time_zone is not None:
        exercise.time_zone = zones.checked_time_zone(data.time_zone)
    if data.title is not None:
        exercise.title = data.title
    if data.locale is not None:
        exercise.locale = data.locale
    session.add(exercise)
    session.commit()
    return exercise


def _insert_team(session: Session, *, exercise: Exercise, name: str, position: int) -> Team:
    # Codes are random, so a clash is rare; retry inside a savepoint rather than check-then-insert.
    for _ in range(_JOIN_CODE_ATTEMPTS):
        team = Team(
            exercise_id=exercise.id, name=name, position=position, join_code=auth.new_join_code()
        )
        try:
            with session.begin_nested():
                session.add(team)
        except IntegrityError:
            continue
        return team
    raise RuntimeError("could not find a free join code")


def add_team(session: Session, *, exercise: Exercise, name: str) -> Team:
    """Add a team at any time before the exercise ends."""
    if exercise.status == ExerciseStatus.ended:
        raise InvalidState("The exercise has ended; no team can be added.", code="exercise_ended")
    teams = teams_of(session, exercise_id=exercise.id)
    if any(team.name.casefold() == name.casefold() for team in teams):
        raise InvalidState(f"A team named {name!r} already exists.", code="team_name_taken")
    team = _insert_team(session, exercise=exercise, name=name, position=len(teams))
    # Participants never learn other teams' names: an empty audience means facilitators only.
    events.record(
        session,
        exercise_id=exercise.id,
        type="team",
        payload={"team": {"id": team.id, "name": team.name}},
        team_ids=[],
    )
    session.commit()
    return team


def remove_participant(session: Session, *, exercise: Exercise, participant_id: str) -> None:
    """Revoke a participant's access; their token stops working and their sockets are closed."""
    participant = session.get(Participant, participant_id)
    team = session.get(Team, participant.team_id) if participant else None
    if participant is None or team is None or team.exercise_id != exercise.id:
        raise NotFound("No such participant in this exercise.", code="participant_not_found")
    if participant.removed_at is not None:
        return
    participant.removed_at = utcnow()
    session.add(participant)
    events.record(
        session,
        exercise_id=exercise.id,
        type="participant_removed",
        payload={"team_id": team.id, "participant_id": participant.id},
        team_ids=[team.id],
    )
    session.commit()


def transition(session: Session, *, exercise: Exercise, action: str) -> Exercise:
    """Apply start / pause / resume / end, or refuse with 409."""
    allowed_from, target = TRANSITIONS[action]
    if exercise.status not in allowed_from:
        raise InvalidState(
            f"Cannot {action} an exercise that is {exercise.status.value}.",
            code="invalid_transition",
        )
    now = utcnow()
    if action == "start":
        exercise.started_at = now
    elif action == "pause":
        exercise.paused_since = now
    elif action == "resume" and exercise.paused_since is not None:
        exercise.paused_s += (now - exercise.paused_since).total_seconds()
        exercise.paused_since = None
    elif action == "end":
        exercise.ended_at = now
    exercise.status = target
    session.add(exercise)
    events.record(
        session,
        exercise_id=exercise.id,
        type="status",
        payload={
            "exercise_id": exercise.id,
            "status": target.value,
            "started_at": _iso(exercise.started_at),
            "ended_at": _iso(exercise.ended_at),
            "paused_s": exercise.paused_s,
        },
    )
    session.commit()
    return exercise


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def require_running(exercise: Exercise, *, doing: str) -> None:
    _require_running(exercise.status, doing=doing)


def _require_running(status: ExerciseStatus, *, doing: str) -> None:
    if status != ExerciseStatus.running:
        raise InvalidState(
            f"The exercise is {status.value}; {doing} only while it is running.",
            code="not_running",
        )


def _resolve_team_ids(
    session: Session, *, exercise: Exercise, team_ids: list[str] | None
) -> list[str]:
    return _chosen_teams(team_ids_of(session, exercise_id=exercise.id), team_ids)


def _chosen_teams(teams: list[str], team_ids: list[str] | None) -> list[str]:
    """The teams asked for (None: all of `teams`), checked against the exercise's `teams`."""
    if team_ids is None:
        if not teams:
            raise Invalid("The exercise has no team yet; add a team first.", code="no_teams")
        return teams
    known = set(teams)
    unknown = [tid for tid in team_ids if tid not in known]
    if unknown:
        raise Invalid(
            f"team_ids names teams that are not in this exercise: {', '.join(unknown[:10])}.",
            code="unknown_team",
        )
    return list(dict.fromkeys(team_ids))


def _scenario_texts(
    library: ScenarioLibrary, *, scenario_id: str, followup_id: str | None
) -> dict[str, dict[str, str]]:
    scenario = library.get(scenario_id)
    if scenario is None:
        raise NotFound(f"No scenario with id {scenario_id!r}.", code="scenario_not_found")
    if followup_id is None:
        parts = {
            "title": scenario.title,
            "body": scenario.body,
            "source": scenario.source,
            "receiving": scenario.receiving,
        }
    else:
        followup = next((f for f in scenario.followups if f.id == followup_id), None)
        if followup is None:
            raise NotFound(
                f"Scenario {scenario_id!r} has no follow-up {followup_id!r}.",
                code="followup_not_found",
            )
        parts = {
            "title": followup.title,
            "body": followup.body,
            "source": scenario.source,
            "receiving": scenario.receiving,
        }
    return {
        locale: {name: text.get(locale) for name, text in parts.items()} for locale in ("ja", "en")
    }


@dataclass(frozen=True)
class _Delivery:
    """What delivering an inject needs to know of its exercise, read under the exercise's lock."""

    status: ExerciseStatus
    locale: str
    paused_s: float
    team_ids: list[str]
    injects_so_far: int


def _delivery_query(*, with_token: bool) -> Select[Any]:
    """The exercise, its teams, the number of injects so far and the newest seq, in one query.

    Built once, with parameters: building this statement for each inject took longer than
    SQLite took to run it. An exercise without teams still gives a row, its team id NULL.
    With `with_token`, only while the token (auth.live_token_params) is a live login of the
    exercise's owner.
    """
    exercise_id: BindParameter[str] = bindparam("exercise_id")
    delivered = sa_select(func.count()).where(_INJECTS.c.exercise_id == exercise_id)
    query = (
        sa_select(
            _EXERCISES.c.status,
            _EXERCISES.c.locale,
            _EXERCISES.c.paused_s,
            _TEAMS.c.id,
            delivered.scalar_subquery(),
            events.newest_seq(exercise_id).scalar_subquery(),
        )
        .select_from(_EXERCISES.outerjoin(_TEAMS, _TEAMS.c.exercise_id == _EXERCISES.c.id))
        .where(_EXERCISES.c.id == exercise_id)
        .order_by(*_TEAM_ORDER)
    )
    if not with_token:
        return query
    return query.join(_LOGIN_TOKENS, _LOGIN_TOKENS.c.facilitator_id == _EXERCISES.c.owner_id).where(
        auth.LIVE_TOKEN
    )


_DELIVERY = _delivery_query(with_token=False)
_DELIVERY_FOR_TOKEN = _delivery_query(with_token=True)
_INSERT_INJECT = _INJECTS.insert()
_INSERT_TARGETS = _INJECT_TARGETS.insert()
_INSERT_TARGETS_POSTGRES = (
    "INSERT INTO injecttarget (inject_id, team_id) "
    "SELECT %(inject_id)s, unnest(CAST(%(team_ids)s AS text[]))"
)


def _delivery(session: Session, *, exercise_id: str, owner_token: str | None) -> _Delivery:
    query, params = _DELIVERY, {"exercise_id": exercise_id}
    if owner_token is not None:
        # The owner's token, checked in the same query rather than one of its own.
        query, params = _DELIVERY_FOR_TOKEN, {**params, **auth.live_token_params(owner_token)}
    # The exercise's write lock first, so that the newest seq can be read with the rest.
    if on_postgres(session):
        sql, (converted,) = driver_params(query, [params], session.get_bind().dialect)
        rows: Sequence[Any] = events.read_locked(
            session, exercise_ids=[exercise_id], sql=sql, params=converted
        )
    else:
        events.serialize_exercise(session, exercise_id=exercise_id)
        # Core through the connection: every participant waits on this (the ORM took twice as long).
        rows = session.connection().execute(query, params).all()
    if not rows and owner_token is not None:
        raise Unauthorized("Your session has ended; log in again to deliver injects.")
    if not rows:
        raise NotFound("No such exercise.", code="exercise_not_found")
    status, locale, paused_s, _, injects_so_far, newest_seq = rows[0]
    events.note_last_seq(session, exercise_id=exercise_id, seq=newest_seq or 0)
    return _Delivery(
        status=ExerciseStatus(status),  # the driver's own rows (PostgreSQL) give its text
        locale=locale,
        paused_s=paused_s,
        team_ids=[row[3] for row in rows if row[3] is not None],
        injects_so_far=injects_so_far,
    )


def deliver_inject(
    session: Session,
    *,
    exercise_id: str,
    data: InjectCreate,
    library: ScenarioLibrary,
    owner_token: str | None = None,
) -> InjectRead:
    """Copy the incident into the exercise and deliver it to the chosen teams.

    `owner_token`: the facilitator's login token, for a caller that has not checked it yet
    (the live socket checks it with each inject, so that logging out revokes at once);
    Unauthorized when it is no longer a live token of the exercise's owner.
    """
    delivery = _delivery(session, exercise_id=exercise_id, owner_token=owner_token)
    _require_running(delivery.status, doing="injects can be delivered")
    team_ids = _chosen_teams(delivery.team_ids, data.team_ids)
    if data.scenario_id is not None:
        texts = _scenario_texts(library, scenario_id=data.scenario_id, followup_id=data.followup_id)
        own = texts[delivery.locale]
    else:
        texts = {}
        own = {
            "title": data.title or "",
            "body": data.body or "",
            "source": data.source or "",
            "receiving": data.receiving or "",
        }
    # A plain object, not one the ORM tracks (the inserts below are Core): its values were
    # validated on the way in, and the ORM's attribute machinery cost more than the insert.
    inject = Inject.model_construct(
        exercise_id=exercise_id,
        position=delivery.injects_so_far + 1,
        scenario_id=data.scenario_id,
        followup_id=data.followup_id,
        texts=texts,
        paused_s_at_delivery=delivery.paused_s,
        time_limit_s=data.time_limit_s,
        auto_followups=data.auto_followups,
        for_all_teams=set(team_ids) == set(delivery.team_ids),
        withdrawn_at=None,
        title=own["title"],
        body=own["body"],
        source=own["source"],
        receiving=own["receiving"],
    )
    # Plain inserts on the tables, not the ORM's unit of work nor an ORM object per team (each
    # took several times as long): every participant is waiting for this click.
    read = inject_read(inject, team_ids)
    new = events.NewEvent(
        exercise_id=exercise_id,
        type="inject",
        payload={"inject": read.model_dump(mode="json")},
        team_ids=team_ids,
    )
    if on_postgres(session):
        _store_postgres(session, inject=inject.model_dump(), team_ids=team_ids, new=new)
        return read
    connection = session.connection()
    connection.execute(_INSERT_INJECT, [inject.model_dump()])
    connection.execute(
        _INSERT_TARGETS, [{"inject_id": inject.id, "team_id": tid} for tid in team_ids]
    )
    events.record_many(session, [new], at=utcnow())
    session.commit()
    return read


def _store_postgres(
    session: Session,
    *,
    inject: dict[str, Any],
    team_ids: list[str],
    new: events.NewEvent,
) -> None:
    """Store a delivered inject, its targets and its event and commit, in one round trip
    (psycopg's pipeline; SQLAlchemy would make four, each holding the exercise's lock), then ring
    the bell. The transaction holds the exercise's lock and noted its newest seq (_delivery)."""
    dialect = session.get_bind().dialect
    event = events.row_of(new, at=utcnow())
    # Converted before sending: the exercise's lock is held meanwhile.
    inject_sql, (inject_params,) = driver_params(_INSERT_INJECT, [inject], dialect)
    event_sql, (event_params,) = driver_params(events.INSERT_RETURNING_SEQ, [event], dialect)
    connection = driver_connection(session)
    written, returned = connection.cursor(), connection.cursor()
    with connection.pipeline():
        written.execute(inject_sql, inject_params)
        # One statement for the targets: executemany sends one per row, each a step in Python.
        written.execute(_INSERT_TARGETS_POSTGRES, {"inject_id": inject["id"], "team_ids": team_ids})
        returned.execute(event_sql, event_params)
        connection.commit()
    (seq,) = returned.fetchone()
    events.stored(session, [event], [seq])
    # The pipeline has committed already; this rings the bell.
    session.commit()


def send_message(
    session: Session, *, exercise: Exercise, text: str, team_ids: list[str] | None, sender: str
) -> Event:
    """A broadcast note from the facilitator to every team or to chosen ones."""
    if exercise.status == ExerciseStatus.ended:
        raise InvalidState(
            "The exercise has ended; messages can no longer be sent.", code="exercise_ended"
        )
    audience = (
        None
        if team_ids is None
        else _resolve_team_ids(session, exercise=exercise, team_ids=team_ids)
    )
    event = events.record(
        session,
        exercise_id=exercise.id,
        type="message",
        payload={"text": text, "team_ids": audience, "from": sender},
        team_ids=audience,
    )
    session.commit()
    return event


def inject_read(inject: Inject, team_ids: Sequence[str]) -> InjectRead:
    return InjectRead(
        id=inject.id,
        exercise_id=inject.exercise_id,
        position=inject.position,
        scenario_id=inject.scenario_id,
        followup_id=inject.followup_id,
        title=inject.title,
        body=inject.body,
        source=inject.source,
        receiving=inject.receiving,
        texts=inject.texts,
        team_ids=list(team_ids),
        delivered_at=inject.delivered_at,
        paused_s_at_delivery=inject.paused_s_at_delivery,
        time_limit_s=inject.time_limit_s,
        auto_followups=inject.auto_followups,
        withdrawn_at=inject.withdrawn_at,
    )


def injects_of(
    session: Session, *, exercise_id: str, team_id: str | None = None
) -> list[InjectRead]:
    """The exercise's injects in delivery order, or only those delivered to one team."""
    in_order = (
        select(Inject).where(Inject.exercise_id == exercise_id).order_by(col(Inject.position))
    )
    if team_id is not None:
        # Only this team's rows: after a restart each of 50 teams asks at once, and reading
        # every team's targets each time made that 50 × teams × injects rows.
        # A team's view names only that team: other teams' ids are none of its business.
        delivered = session.exec(
            in_order.join(InjectTarget, col(InjectTarget.inject_id) == col(Inject.id)).where(
                InjectTarget.team_id == team_id
            )
        )
        return [inject_read(inject, [team_id]) for inject in delivered]
    targets: dict[str, list[str]] = {}
    for inject_id, target in session.exec(
        select(InjectTarget.inject_id, InjectTarget.team_id)
        .join(Inject, col(Inject.id) == col(InjectTarget.inject_id))
        .where(Inject.exercise_id == exercise_id)
    ):
        targets.setdefault(inject_id, []).append(target)
    return [
        inject_read(inject, targets[inject.id])
        for inject in session.exec(in_order)
        if inject.id in targets
    ]


def get_delivered_inject(session: Session, *, team: Team, inject_id: str) -> Inject:
    """The inject if it was delivered to this team; otherwise it does not exist for the team."""
    target = session.get(InjectTarget, (inject_id, team.id))
    inject = session.get(Inject, inject_id) if target else None
    if inject is None:
        raise NotFound("No such inject was delivered to this team.", code="inject_not_found")
    return inject


def exercise_read(session: Session, exercise: Exercise) -> ExerciseRead:
    teams = teams_of(session, exercise_id=exercise.id)
    return ExerciseRead(
        **exercise.model_dump(exclude={"status"}),
        status=exercise.status.value,
        teams=[TeamRead.model_validate(team, from_attributes=True) for team in teams],
    )


def exercise_detail(session: Session, exercise: Exercise) -> ExerciseDetail:
    teams = teams_of(session, exercise_id=exercise.id)
    participants = session.exec(
        select(Participant)
        .where(col(Participant.team_id).in_([team.id for team in teams]))
        .where(col(Participant.removed_at).is_(None))
        .order_by(col(Participant.joined_at))
    ).all()
    by_team: dict[str, list[ParticipantRead]] = {}
    for participant in participants:
        by_team.setdefault(participant.team_id, []).append(
            ParticipantRead.model_validate(participant, from_attributes=True)
        )
    return ExerciseDetail(
        **exercise.model_dump(exclude={"status"}),
        status=exercise.status.value,
        teams=[
            TeamDetail(
                id=t.id, name=t.name, join_code=t.join_code, participants=by_team.get(t.id, [])
            )
            for t in teams
        ],
        injects=injects_of(session, exercise_id=exercise.id),
    )


def withdraw_inject(session: Session, *, exercise: Exercise, inject_id: str) -> InjectRead:
    """Take back a mistaken inject: its teams see it withdrawn, its answers stay readable and
    take no more edits, and its pending follow-ups are not delivered."""
    events.serialize_exercise(session, exercise_id=exercise.id)
    inject = inject_of(session, exercise=exercise, inject_id=inject_id)
    if exercise.status == ExerciseStatus.ended:
        raise InvalidState(
            "The exercise has ended; its injects stay as they were.", code="exercise_ended"
        )
    if inject.withdrawn_at is not None:
        raise InvalidState("This inject was withdrawn already.", code="inject_withdrawn")
    inject.withdrawn_at = utcnow()
    session.add(inject)
    targets = _targets_of(session, inject_id=inject.id)
    events.record(
        session,
        exercise_id=exercise.id,
        type="inject_withdrawn",
        payload={"inject_id": inject.id, "withdrawn_at": inject.withdrawn_at.isoformat()},
        team_ids=targets,
    )
    session.commit()
    return inject_read(inject, targets)


def inject_of(session: Session, *, exercise: Exercise, inject_id: str) -> Inject:
    """One of the exercise's injects; 404 for another exercise's or none."""
    inject = session.get(Inject, inject_id)
    if inject is None or inject.exercise_id != exercise.id:
        raise NotFound("No such inject in this exercise.", code="inject_not_found")
    return inject


def _targets_of(session: Session, *, inject_id: str) -> list[str]:
    return list(
        session.exec(select(InjectTarget.team_id).where(InjectTarget.inject_id == inject_id))
    )


def delete_exercise(session: Session, *, exercise: Exercise) -> None:
    """Delete a draft or ended exercise with everything of it; a live one is refused."""
    if exercise.status in (ExerciseStatus.running, ExerciseStatus.paused):
        raise InvalidState(
            f"The exercise is {exercise.status.value}; end it before deleting it.",
            code="exercise_active",
        )
    # Every table of an exercise refers to it (or to its teams and injects) ON DELETE CASCADE.
    session.execute(sa_delete(_EXERCISES).where(_EXERCISES.c.id == exercise.id))
    session.commit()


# What a copy of an exercise keeps besides its teams: the settings of the workshop, not its run.
_COPIED_SETTINGS = ("locale", "time_zone", "scenario_ids")
_COPY_SUFFIX = {"ja": "（コピー）", "en": " (copy)"}


def add_copy(session: Session, *, exercise: Exercise, title: str | None) -> Exercise:
    """A new draft with the same settings and teams (new join codes), no participants, injects or
    answers; added to the session, for the caller to add more of the copy and commit."""
    if title is None:
        suffix = _COPY_SUFFIX.get(exercise.locale, _COPY_SUFFIX["en"])
        title = exercise.title[: 200 - len(suffix)] + suffix
    copy = Exercise(
        owner_id=exercise.owner_id,
        title=title,
        **{name: getattr(exercise, name) for name in _COPIED_SETTINGS},
    )
    session.add(copy)
    session.flush()
    for position, team in enumerate(teams_of(session, exercise_id=exercise.id)):
        _insert_team(session, exercise=copy, name=team.name, position=position)
    return copy

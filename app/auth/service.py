"""Facilitator accounts and tokens, join codes, and participants joining a team."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ColumnElement, and_, bindparam
from sqlmodel import Session, col, delete, select

from app.auth.models import Facilitator, LoginToken
from app.db import utcnow
from app.errors import Conflict, InvalidState, NotFound, Unauthorized
from app.eventlog import service as events
from app.exercises.models import Exercise, ExerciseStatus, Participant, Team

FACILITATOR_TOKEN_PREFIX = "f_"
PARTICIPANT_TOKEN_PREFIX = "p_"
# No 0/O, 1/I/L: codes are read off a projector and typed on phones.
JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
JOIN_CODE_LENGTH = 8

_hasher = PasswordHasher()


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def new_join_code() -> str:
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


def normalize_join_code(code: str) -> str:
    """Codes are case-insensitive and may be typed with spaces or dashes."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def create_facilitator(session: Session, *, username: str, password: str) -> Facilitator:
    """Add a facilitator account."""
    if session.exec(select(Facilitator).where(Facilitator.username == username)).first():
        raise Conflict(f"A facilitator named {username!r} already exists.", code="username_taken")
    facilitator = Facilitator(username=username, password_hash=hash_password(password))
    session.add(facilitator)
    session.commit()
    return facilitator


def reset_password(session: Session, *, username: str, password: str) -> Facilitator:
    """Set a new password and end every session of that facilitator."""
    facilitator = session.exec(select(Facilitator).where(Facilitator.username == username)).first()
    if facilitator is None:
        raise NotFound(f"No facilitator named {username!r}.")
    facilitator.password_hash = hash_password(password)
    session.add(facilitator)
    session.exec(delete(LoginToken).where(col(LoginToken.facilitator_id) == facilitator.id))
    session.commit()
    return facilitator


def ensure_admin(session: Session, *, password: str | None) -> str | None:
    """On a database with no facilitator, create `admin`; returns the password if it was generated."""
    if session.exec(select(Facilitator.id)).first() is not None:
        return None
    generated = None if password else generate_password()
    create_facilitator(session, username="admin", password=password or generated or "")
    return generated


def login(session: Session, *, username: str, password: str, ttl_hours: int) -> str:
    """Check the credentials and open a session; returns the new token."""
    facilitator = session.exec(select(Facilitator).where(Facilitator.username == username)).first()
    if facilitator is None or not verify_password(facilitator.password_hash, password):
        raise Unauthorized("Wrong username or password.", code="bad_credentials")
    if _hasher.check_needs_rehash(facilitator.password_hash):
        facilitator.password_hash = hash_password(password)
        session.add(facilitator)
    token = FACILITATOR_TOKEN_PREFIX + secrets.token_urlsafe(32)
    assert facilitator.id is not None
    session.add(
        LoginToken(
            token_hash=hash_token(token),
            facilitator_id=facilitator.id,
            expires_at=utcnow() + timedelta(hours=ttl_hours),
        )
    )
    session.commit()
    return token


def logout(session: Session, *, token: str) -> None:
    """End the session of that token (a no-op for an unknown one)."""
    session.exec(delete(LoginToken).where(col(LoginToken.token_hash) == hash_token(token)))
    session.commit()


def facilitator_for_token(session: Session, *, token: str) -> Facilitator | None:
    """The facilitator a live token belongs to."""
    if not token.startswith(FACILITATOR_TOKEN_PREFIX):
        return None
    # One query, not the token row and then its facilitator: every facilitator request pays it.
    return session.exec(
        select(Facilitator)
        .join(LoginToken, col(LoginToken.facilitator_id) == col(Facilitator.id))
        .where(is_live_token(token))
    ).first()


def _live_token(token_hash: Any, now: Any) -> ColumnElement[bool]:
    """The condition on LoginToken for a token (by hash) that has not expired at `now`."""
    return and_(col(LoginToken.token_hash) == token_hash, _unexpired(now))


def _unexpired(now: Any) -> ColumnElement[bool]:
    return col(LoginToken.expires_at) > now


# The same with the hash and the time as parameters: a statement built once takes it with
# live_token_params.
LIVE_TOKEN = _live_token(bindparam("token_hash"), bindparam("now"))


def live_token_params(token: str) -> dict[str, Any]:
    """The parameters of LIVE_TOKEN for this token, now."""
    return {"token_hash": hash_token(token), "now": utcnow()}


def live_tokens(session: Session, *, tokens: list[str]) -> set[str]:
    """Which of these login tokens are still live (not logged out, not expired)."""
    by_hash = {hash_token(token): token for token in tokens}
    found = session.exec(
        select(LoginToken.token_hash).where(
            col(LoginToken.token_hash).in_(by_hash), _unexpired(utcnow())
        )
    )
    return {by_hash[token_hash] for token_hash in found}


def is_live_token(token: str) -> ColumnElement[bool]:
    """The condition on LoginToken for this token, unexpired (for queries joined to it)."""
    return _live_token(hash_token(token), utcnow())


def participant_for_token(session: Session, *, token: str) -> Participant | None:
    """The participant a token belongs to, unless they were removed."""
    if not token.startswith(PARTICIPANT_TOKEN_PREFIX):
        return None
    participant = session.exec(
        select(Participant).where(Participant.token_hash == hash_token(token))
    ).first()
    if participant is None or participant.removed_at is not None:
        return None
    return participant


@dataclass(frozen=True)
class Joined:
    token: str
    participant: Participant
    team: Team
    exercise: Exercise


def find_team_by_code(session: Session, *, code: str) -> Team | None:
    return session.exec(select(Team).where(Team.join_code == normalize_join_code(code))).first()


def join(session: Session, *, code: str, name: str) -> Joined:
    """Add a participant to the team whose join code this is."""
    team = find_team_by_code(session, code=code)
    if team is None:
        raise NotFound(
            "No team has that join code; check the code on the projector.", code="unknown_code"
        )
    exercise = session.get(Exercise, team.exercise_id)
    assert exercise is not None
    if exercise.status == ExerciseStatus.ended:
        raise InvalidState(
            "This exercise has ended; it no longer accepts participants.", code="exercise_ended"
        )
    token = PARTICIPANT_TOKEN_PREFIX + secrets.token_urlsafe(32)
    participant = Participant(team_id=team.id, name=name, token_hash=hash_token(token))
    session.add(participant)
    session.flush()
    events.record(
        session,
        exercise_id=exercise.id,
        type="participant",
        payload={"team_id": team.id, "participant": {"id": participant.id, "name": name}},
        team_ids=[team.id],
    )
    session.commit()
    return Joined(token=token, participant=participant, team=team, exercise=exercise)

"""The wire form of stored events: the message a client gets, encoded once for every socket."""

import json
from dataclasses import dataclass
from typing import Any

from app.eventlog.models import Event


def encode(message: dict[str, Any]) -> str:
    """JSON text of a message, as compact as possible and readable in any language."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def message(event: Event) -> dict[str, Any]:
    """The wire form of an event: `{"type", "seq", "at", ...payload}`."""
    return {"type": event.type, "seq": event.seq, "at": event.at.isoformat(), **event.payload}


def visible_to_team(event: Event, team_id: str) -> bool:
    """Whether a participant of `team_id` may see the event."""
    return event.team_ids is None or team_id in event.team_ids


@dataclass(frozen=True, slots=True)
class Envelope:
    """One stored event as the hub fans it out: who may see it, and its wire text."""

    seq: int
    # None: every team; a tuple: only those teams (facilitators see everything).
    team_ids: tuple[str, ...] | None
    text: str
    # The event's type, for the few the hub acts on itself (a participant's removal).
    type: str = ""

    @classmethod
    def of(cls, event: Event) -> "Envelope":
        assert event.seq is not None
        team_ids = None if event.team_ids is None else tuple(event.team_ids)
        return cls(seq=event.seq, team_ids=team_ids, text=encode(message(event)), type=event.type)

    def visible_to_team(self, team_id: str) -> bool:
        return self.team_ids is None or team_id in self.team_ids

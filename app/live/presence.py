"""Who is online in each team and which field they are in, announced at most every ~200 ms.

Process-local: with several server processes, a broker backend must also carry presence
(e.g. each process publishes its teams' counts) for the lists to be complete.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PRESENCE_INTERVAL_S = 0.2


@dataclass
class Member:
    id: str
    name: str
    sockets: int = 0
    inject_id: str | None = None
    field: str | None = None

    def public(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "name": self.name, "online": self.sockets > 0}
        if self.sockets > 0 and self.field is not None:
            body["field"] = self.field
            body["inject_id"] = self.inject_id
        return body


@dataclass
class TeamPresence:
    exercise_id: str
    members: dict[str, Member]


# Called with (exercise id, team id, presence body) when a team's list changed.
Announce = Callable[[str, str, dict[str, Any]], None]


class PresenceBoard:
    """Online counts and focus per participant; batches announcements per team."""

    def __init__(self, *, announce: Announce, interval_s: float = PRESENCE_INTERVAL_S) -> None:
        self._announce = announce
        self.interval_s = interval_s
        self._teams: dict[str, TeamPresence] = {}
        self._dirty: set[str] = set()
        self._last_flush = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def merge_roster(
        self, *, exercise_id: str, team_id: str, roster: list[tuple[str, str]]
    ) -> None:
        """Learn the team's participants (those who never connected show as offline)."""
        team = self._teams.setdefault(team_id, TeamPresence(exercise_id=exercise_id, members={}))
        for participant_id, name in roster:
            if participant_id not in team.members:
                team.members[participant_id] = Member(id=participant_id, name=name)

    def joined(self, *, exercise_id: str, team_id: str, participant_id: str, name: str) -> None:
        """A participant joined the team (no socket yet): show them as offline."""
        self.merge_roster(exercise_id=exercise_id, team_id=team_id, roster=[(participant_id, name)])
        self._touch(team_id)

    def connect(self, *, exercise_id: str, team_id: str, participant_id: str, name: str) -> None:
        self.merge_roster(exercise_id=exercise_id, team_id=team_id, roster=[(participant_id, name)])
        member = self._teams[team_id].members[participant_id]
        member.sockets += 1
        if member.sockets == 1:
            self._touch(team_id)

    def disconnect(self, *, team_id: str, participant_id: str) -> None:
        team = self._teams.get(team_id)
        member = team.members.get(participant_id) if team else None
        if member is None or member.sockets == 0:
            return
        member.sockets -= 1
        if member.sockets == 0:
            member.inject_id = member.field = None
            self._touch(team_id)

    def focus(
        self, *, team_id: str, participant_id: str, inject_id: str | None, field: str | None
    ) -> None:
        team = self._teams.get(team_id)
        member = team.members.get(participant_id) if team else None
        if member is None or (member.inject_id, member.field) == (inject_id, field):
            return
        member.inject_id, member.field = inject_id, field
        self._touch(team_id)

    def remove(self, *, team_id: str, participant_id: str) -> None:
        """A participant was removed from the team: they leave its list."""
        team = self._teams.get(team_id)
        if team is not None and team.members.pop(participant_id, None) is not None:
            self._touch(team_id)

    def view(self, team_id: str) -> dict[str, Any]:
        """The `presence` body of one team."""
        team = self._teams.get(team_id)
        members = team.members.values() if team else ()
        return {"team_id": team_id, "participants": [m.public() for m in members]}

    def forget_exercise(self, exercise_id: str) -> None:
        """Drop the teams of an exercise nobody in this process watches any more."""
        for team_id in [tid for tid, t in self._teams.items() if t.exercise_id == exercise_id]:
            del self._teams[team_id]
            self._dirty.discard(team_id)

    def _touch(self, team_id: str) -> None:
        self._dirty.add(team_id)
        if self._timer is not None:
            return
        # Leading edge: a quiet team's change goes out at once; a busy one at most every interval.
        delay = max(0.0, self._last_flush + self.interval_s - time.monotonic())
        self._timer = asyncio.get_running_loop().call_later(delay, self._flush)

    def _flush(self) -> None:
        self._timer = None
        self._last_flush = time.monotonic()
        dirty, self._dirty = self._dirty, set()
        for team_id in dirty:
            team = self._teams.get(team_id)
            if team is not None:
                self._announce(team.exercise_id, team_id, self.view(team_id))

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

"""Who is online in each team and which field they are in, announced at most every ~200 ms.

With several server processes each board knows its own sockets and learns the others' from
`PresenceNote`s carried by the broker: a process publishes a team's note whenever its own
part of that team changes, and all of its notes again every `REFRESH_S`. A note holds for
`3 × REFRESH_S`: the participants of a process that died without a word go offline then.
A process that starts following an exercise asks for the others' notes at once.
"""

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.live.broker import PresenceNote

PRESENCE_INTERVAL_S = 0.2
REFRESH_S = 10.0


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
    # What other processes said of this team: origin -> (valid until, participant -> focus).
    remote: dict[str, tuple[float, dict[str, tuple[str | None, str | None]]]] = field(
        default_factory=dict
    )

    def remote_focus(self, participant_id: str) -> tuple[str | None, str | None] | None:
        """The focus another process reports for a participant it has online, if any."""
        for _, online in self.remote.values():
            if participant_id in online:
                return online[participant_id]
        return None


# Called with (exercise id, team id, presence body) when a team's list changed.
Announce = Callable[[str, str, dict[str, Any]], None]
# Hands a note about this process's part of a team to the other processes.
Publish = Callable[[PresenceNote], None]


class PresenceBoard:
    """Online counts and focus per participant; batches announcements per team."""

    def __init__(
        self,
        *,
        announce: Announce,
        publish: Publish | None = None,
        interval_s: float = PRESENCE_INTERVAL_S,
        refresh_s: float = REFRESH_S,
    ) -> None:
        self._announce = announce
        self._publish = publish
        self.interval_s = interval_s
        self.refresh_s = refresh_s
        # This process, as other processes' notes name it.
        self.origin = uuid.uuid4().hex
        self._teams: dict[str, TeamPresence] = {}
        self._dirty: set[str] = set()
        # Teams whose own part changed since their last note.
        self._changed: set[str] = set()
        self._last_flush = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._refresher: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Refresh this process's notes and expire the others' on a timer."""
        if self._publish is not None:
            self._refresher = asyncio.get_running_loop().create_task(self._refresh())

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
            self._touch(team_id, changed=True)

    def disconnect(self, *, team_id: str, participant_id: str) -> None:
        team = self._teams.get(team_id)
        member = team.members.get(participant_id) if team else None
        if member is None or member.sockets == 0:
            return
        member.sockets -= 1
        if member.sockets == 0:
            member.inject_id = member.field = None
            self._touch(team_id, changed=True)

    def focus(
        self, *, team_id: str, participant_id: str, inject_id: str | None, field: str | None
    ) -> None:
        team = self._teams.get(team_id)
        member = team.members.get(participant_id) if team else None
        if member is None or (member.inject_id, member.field) == (inject_id, field):
            return
        member.inject_id, member.field = inject_id, field
        self._touch(team_id, changed=member.sockets > 0)

    def remove(self, *, team_id: str, participant_id: str) -> None:
        """A participant was removed from the team: they leave its list."""
        team = self._teams.get(team_id)
        if team is not None and team.members.pop(participant_id, None) is not None:
            for _, online in team.remote.values():
                online.pop(participant_id, None)
            self._touch(team_id)

    def view(self, team_id: str) -> dict[str, Any]:
        """The `presence` body of one team, as every process together sees it."""
        team = self._teams.get(team_id)
        if team is None:
            return {"team_id": team_id, "participants": []}
        participants = []
        for member in team.members.values():
            body = member.public()
            elsewhere = None if member.sockets > 0 else team.remote_focus(member.id)
            if elsewhere is not None:
                body["online"] = True
                inject_id, focus = elsewhere
                if focus is not None:
                    body["field"], body["inject_id"] = focus, inject_id
            participants.append(body)
        return {"team_id": team_id, "participants": participants}

    # -- other processes -----------------------------------------------------------------------

    def merge_note(self, note: PresenceNote) -> None:
        """Take in another process's part of a team (its newest note replaces its last)."""
        if note.origin == self.origin:
            return
        if note.team_id is None:
            self.republish(note.exercise_id)  # a process began following the exercise: tell it
            return
        team = self._teams.setdefault(
            note.team_id, TeamPresence(exercise_id=note.exercise_id, members={})
        )
        for participant_id, (name, _, _) in note.online.items():
            if participant_id not in team.members:
                team.members[participant_id] = Member(id=participant_id, name=name)
        online = {pid: (inject_id, focus) for pid, (_, inject_id, focus) in note.online.items()}
        before = team.remote.get(note.origin)
        if online:
            team.remote[note.origin] = (time.monotonic() + note.ttl_s, online)
        else:
            team.remote.pop(note.origin, None)
        if before is None or before[1] != online:
            self._touch(note.team_id)

    def ask(self, exercise_id: str) -> None:
        """This process began following the exercise: the others send their notes now."""
        if self._publish is not None:
            self._publish(self._note(exercise_id, None))

    def republish(self, exercise_id: str) -> None:
        for team_id, team in list(self._teams.items()):
            if team.exercise_id == exercise_id:
                self._send_note(team_id)

    def _note(self, exercise_id: str, team_id: str | None) -> PresenceNote:
        online: dict[str, tuple[str, str | None, str | None]] = {}
        team = self._teams.get(team_id) if team_id is not None else None
        if team is not None:
            online = {
                m.id: (m.name, m.inject_id, m.field) for m in team.members.values() if m.sockets
            }
        return PresenceNote(
            origin=self.origin,
            exercise_id=exercise_id,
            team_id=team_id,
            online=online,
            ttl_s=3 * self.refresh_s,
        )

    def _send_note(self, team_id: str) -> None:
        team = self._teams.get(team_id)
        if self._publish is not None and team is not None:
            self._publish(self._note(team.exercise_id, team_id))

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            now = time.monotonic()
            for team_id, team in list(self._teams.items()):
                expired = [o for o, (until, _) in team.remote.items() if until <= now]
                for origin in expired:
                    del team.remote[origin]
                if expired:
                    self._touch(team_id)
                if any(m.sockets for m in team.members.values()):
                    self._send_note(team_id)

    def forget_exercise(self, exercise_id: str) -> None:
        """Drop the teams of an exercise nobody in this process watches any more."""
        for team_id in [tid for tid, t in self._teams.items() if t.exercise_id == exercise_id]:
            if team_id in self._changed:
                self._send_note(team_id)  # its last socket here just left: say so before forgetting
            del self._teams[team_id]
            self._dirty.discard(team_id)
            self._changed.discard(team_id)

    def _touch(self, team_id: str, *, changed: bool = False) -> None:
        self._dirty.add(team_id)
        if changed:
            self._changed.add(team_id)
        if self._timer is not None:
            return
        # Leading edge: a quiet team's change goes out at once; a busy one at most every interval.
        delay = max(0.0, self._last_flush + self.interval_s - time.monotonic())
        self._timer = asyncio.get_running_loop().call_later(delay, self._flush)

    def _flush(self) -> None:
        self._timer = None
        self._last_flush = time.monotonic()
        dirty, self._dirty = self._dirty, set()
        changed, self._changed = self._changed, set()
        for team_id in dirty:
            team = self._teams.get(team_id)
            if team is not None:
                self._announce(team.exercise_id, team_id, self.view(team_id))
        for team_id in changed:
            self._send_note(team_id)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None

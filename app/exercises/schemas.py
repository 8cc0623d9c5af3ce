"""Request and response bodies of exercises, teams, injects and messages."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.db import reject_nul

TeamName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=80),
    AfterValidator(reject_nul),
]
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(reject_nul),
]
Identifier = Annotated[str, StringConstraints(max_length=80), AfterValidator(reject_nul)]
Locale = Literal["ja", "en"]
# Checked against the zone database by the service, which answers `invalid_time_zone`.
TimeZoneName = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(reject_nul)
]
# Who reported an inject and which department received it: a short label, as in the handout.
InjectLabel = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=200),
    AfterValidator(reject_nul),
]
MAX_TEAMS = 200


def _unique_names(names: list[str]) -> list[str]:
    seen: set[str] = set()
    for name in names:
        if name.casefold() in seen:
            raise ValueError(f"team names must be unique; {name!r} appears twice")
        seen.add(name.casefold())
    return names


class ExerciseCreate(BaseModel):
    title: Title
    teams: list[TeamName] = Field(default_factory=list, max_length=MAX_TEAMS)
    locale: Locale = "ja"
    # Unset: the locale's default (Asia/Tokyo for ja, UTC for en).
    time_zone: TimeZoneName | None = None
    scenario_ids: list[Identifier] | None = Field(default=None, max_length=500)

    _check_teams = field_validator("teams")(_unique_names)


class ExerciseUpdate(BaseModel):
    """A `PATCH`: only the fields given change."""

    title: Title | None = None
    locale: Locale | None = None
    time_zone: TimeZoneName | None = None


class TeamCreate(BaseModel):
    name: TeamName


class TeamRead(BaseModel):
    id: str
    name: str
    join_code: str


class ParticipantRead(BaseModel):
    id: str
    name: str
    joined_at: datetime


class TeamDetail(TeamRead):
    participants: list[ParticipantRead]


class InjectCreate(BaseModel):
    scenario_id: Identifier | None = None
    followup_id: Identifier | None = None
    title: (
        Annotated[
            str,
            StringConstraints(strip_whitespace=True, max_length=500),
            AfterValidator(reject_nul),
        ]
        | None
    ) = None
    body: (
        Annotated[
            str,
            StringConstraints(strip_whitespace=True, max_length=20_000),
            AfterValidator(reject_nul),
        ]
        | None
    ) = None
    source: InjectLabel | None = None
    receiving: InjectLabel | None = None
    team_ids: list[Identifier] | None = Field(default=None, max_length=MAX_TEAMS)
    time_limit_s: int | None = Field(default=None, ge=1, le=7 * 24 * 3600)
    auto_followups: bool = False

    @model_validator(mode="after")
    def _scenario_or_text(self) -> "InjectCreate":
        if self.scenario_id is None and not self.title:
            raise ValueError(
                "your own inject needs a title (or give scenario_id to deliver a library scenario)"
            )
        if self.scenario_id is None and not self.body:
            raise ValueError("your own inject needs a body: the situation the teams respond to")
        if self.scenario_id is not None and (
            self.title or self.body or self.source or self.receiving
        ):
            raise ValueError(
                "give either scenario_id or your own title and body (with source and "
                "receiving), not both"
            )
        if self.followup_id is not None and self.scenario_id is None:
            raise ValueError("followup_id needs the scenario_id it belongs to")
        if self.auto_followups and (self.scenario_id is None or self.followup_id is not None):
            raise ValueError("auto_followups applies to a library scenario, not to a follow-up")
        if self.team_ids is not None and not self.team_ids:
            raise ValueError("team_ids, when given, must name at least one team")
        return self


class InjectRead(BaseModel):
    id: str
    exercise_id: str
    position: int
    scenario_id: str | None
    followup_id: str | None
    title: str
    body: str
    source: str
    receiving: str
    texts: dict[str, Any]
    team_ids: list[str]
    delivered_at: datetime
    # The exercise's paused seconds before delivery: a browser subtracts only later pauses, as
    # the server does, so both show the same elapsed time.
    paused_s_at_delivery: float
    time_limit_s: int | None
    auto_followups: bool
    withdrawn_at: datetime | None


class ExerciseRead(BaseModel):
    id: str
    title: str
    status: str
    locale: str
    time_zone: str
    scenario_ids: list[str]
    teams: list[TeamRead]
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None


class ExerciseDetail(ExerciseRead):
    teams: list[TeamDetail]  # type: ignore[assignment]
    injects: list[InjectRead]
    paused_s: float


class ExerciseCopy(BaseModel):
    """`POST …/copy`: the new exercise's title (default: the original's, marked as a copy)."""

    title: Title | None = None


StageShow = Literal["lobby", "inject", "message", "status"]
StageText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    AfterValidator(reject_nul),
]


class StageSet(BaseModel):
    """What the projector shows: the lobby, one inject, a message, or the status board."""

    show: StageShow
    inject_id: Identifier | None = None
    text: StageText | None = None

    @model_validator(mode="after")
    def _what_to_show(self) -> "StageSet":
        if self.show == "inject" and self.inject_id is None:
            raise ValueError("show 'inject' needs inject_id: the inject to put on the projector")
        if self.show == "message" and self.text is None:
            raise ValueError("show 'message' needs text: the message to put on the projector")
        if self.show != "inject" and self.inject_id is not None:
            raise ValueError("inject_id goes only with show 'inject'")
        if self.show != "message" and self.text is not None:
            raise ValueError("text goes only with show 'message'")
        return self


class StageRead(BaseModel):
    show: StageShow
    inject_id: str | None = None
    text: str | None = None
    # When the facilitator put it there, or when the inject was delivered (it went by itself).
    at: datetime | None = None


class MessageCreate(BaseModel):
    text: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
        AfterValidator(reject_nul),
    ]
    team_ids: list[Identifier] | None = Field(default=None, max_length=MAX_TEAMS)


class MessageRead(BaseModel):
    seq: int
    text: str
    team_ids: list[str] | None
    at: datetime

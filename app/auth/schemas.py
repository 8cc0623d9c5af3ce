"""Request and response bodies of login and join."""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, StringConstraints

from app.db import reject_nul

Username = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(reject_nul),
]
DisplayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=80),
    AfterValidator(reject_nul),
]


class LoginRequest(BaseModel):
    username: Username
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class LoginRead(BaseModel):
    token: str
    username: str


class JoinRequest(BaseModel):
    code: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=32),
        AfterValidator(reject_nul),
    ]
    name: DisplayName


class TeamRef(BaseModel):
    id: str
    name: str


class ExerciseRef(BaseModel):
    id: str
    title: str
    status: str


class JoinRead(BaseModel):
    token: str
    participant_id: str
    team: TeamRef
    exercise: ExerciseRef

"""Schema of a scenario file: a set of incidents with follow-ups and debrief guidance."""

from collections import Counter
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]

GuidanceField = Literal[
    "overview",
    "affected_customers",
    "secondary_damage",
    "customer_countermeasures",
    "cause",
    "business_impact",
    "recurrence_prevention",
    "accountable",
    "press",
    "investigation",
    "legal",
    "customer_contact",
    "other",
]
# The two decision answers may carry guidance too, but the matrix proper is the 13 above.
GuidanceKey = Literal[GuidanceField, "disclose", "estimated_time"]

GUIDANCE_FIELDS: tuple[str, ...] = get_args(GuidanceField)


class _StrictModel(BaseModel):
    # strict: YAML's `yes` or `1` must not quietly become a string or a bool-as-int.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LocalizedText(_StrictModel):
    """A text in Japanese and English."""

    ja: Text
    en: Text

    def get(self, locale: str) -> str:
        """The text in `locale` (a tag like "ja" or "ja-JP"); English for any other language."""
        return self.ja if locale.split("-")[0].lower() == "ja" else self.en


class Followup(_StrictModel):
    """An escalation inject the facilitator may deliver after the scenario itself."""

    id: Identifier
    after_s: int = Field(ge=0)
    title: LocalizedText
    body: LocalizedText


class Scenario(_StrictModel):
    """One incident as reported to the company, with follow-ups and model answers."""

    id: Identifier
    no: int = Field(ge=1)
    title: LocalizedText
    source: LocalizedText
    receiving: LocalizedText
    body: LocalizedText
    followups: list[Followup] = Field(default_factory=list, max_length=3)
    guidance: dict[GuidanceKey, LocalizedText] = Field(default_factory=dict)

    @field_validator("followups")
    @classmethod
    def _unique_followup_ids(cls, followups: list[Followup]) -> list[Followup]:
        _reject_duplicates("followup id", [f.id for f in followups])
        return followups

    def public(self, set_id: str) -> dict[str, Any]:
        """The scenario as `GET /api/scenarios` lists it."""
        return {
            "id": self.id,
            "set": set_id,
            "no": self.no,
            "title": self.title.model_dump(),
            "source": self.source.model_dump(),
            "receiving": self.receiving.model_dump(),
            "body": self.body.model_dump(),
            "followups": [f.model_dump() for f in self.followups],
            "guidance": {key: text.model_dump() for key, text in self.guidance.items()},
        }


class ScenarioSet(_StrictModel):
    """The content of one scenario file."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    set_id: Identifier = Field(alias="set")
    title: LocalizedText
    scenarios: list[Scenario] = Field(min_length=1)

    @field_validator("scenarios")
    @classmethod
    def _unique_ids_and_numbers(cls, scenarios: list[Scenario]) -> list[Scenario]:
        _reject_duplicates("scenario id", [s.id for s in scenarios])
        _reject_duplicates("scenario no", [s.no for s in scenarios])
        return scenarios


def _reject_duplicates(what: str, values: list[str] | list[int]) -> None:
    counts = Counter(values)
    repeated = [value for value in counts if counts[value] > 1]
    if repeated:
        first = repeated[0]
        positions = " and ".join(f"[{i}]" for i, value in enumerate(values) if value == first)
        # A custom error keeps pydantic's "Value error, " prefix out of the author's message.
        raise PydanticCustomError(
            "duplicate",
            "duplicate {what} {value} at items {positions}",
            {"what": what, "value": repr(first), "positions": positions},
        )

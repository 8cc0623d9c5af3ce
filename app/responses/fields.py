"""The response fields of the matrix, in the workshop's order, with their labels."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ResponseField:
    key: str
    group: str  # "announcement", "roles" or "decision"
    ja: str
    en: str

    def label(self, locale: str) -> str:
        return self.ja if locale == "ja" else self.en


FIELDS: tuple[ResponseField, ...] = (
    ResponseField("overview", "announcement", "事故の概要", "Incident overview"),
    ResponseField(
        "affected_customers",
        "announcement",
        "影響を受ける顧客数と特徴",
        "Number and profile of affected customers",
    ),
    ResponseField(
        "secondary_damage", "announcement", "想定される二次被害", "Expected secondary damage"
    ),
    ResponseField(
        "customer_countermeasures",
        "announcement",
        "顧客などに推奨する対策",
        "Countermeasures recommended to customers and others",
    ),
    ResponseField("cause", "announcement", "事故の原因・要因", "Cause and contributing factors"),
    ResponseField(
        "business_impact", "announcement", "事業への影響の有無", "Impact on the business"
    ),
    ResponseField("recurrence_prevention", "announcement", "再発防止策", "Recurrence prevention"),
    ResponseField(
        "accountable",
        "roles",
        "責任者（CEO, CIO, CTO, CSO, CISO等）",
        "Accountable executive (CEO, CIO, CTO, CSO, CISO …)",
    ),
    ResponseField("press", "roles", "報道対応", "Press / media response"),
    ResponseField("investigation", "roles", "事故調査、まとめ", "Investigation and write-up"),
    ResponseField("legal", "roles", "法的な検討", "Legal review"),
    ResponseField("customer_contact", "roles", "顧客対応", "Customer response"),
    ResponseField("other", "roles", "その他", "Other"),
    ResponseField("disclose", "decision", "公表判断", "Disclose publicly?"),
    ResponseField("estimated_time", "decision", "所要時間（見込み）", "Estimated time to announce"),
    ResponseField("notes", "decision", "メモ", "Notes"),
)
FIELD_KEYS: frozenset[str] = frozenset(field.key for field in FIELDS)
ANNOUNCEMENT_FIELDS = tuple(field for field in FIELDS if field.group == "announcement")
ROLE_FIELDS = tuple(field for field in FIELDS if field.group == "roles")
MATRIX_FIELDS = ANNOUNCEMENT_FIELDS + ROLE_FIELDS
DISCLOSE_CHOICES = ("yes", "no", "undecided")
MAX_VALUE_LENGTH = 5000

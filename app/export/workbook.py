"""The debrief workbook in the workshop's layout, built with openpyxl from an exercise's results."""

import io
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from zipfile import ZIP_DEFLATED, ZipFile

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from app.debrief.service import EventRow, Results
from app.export.sheetxml import FastExcelWriter, Grid, style_id
from app.responses.fields import ANNOUNCEMENT_FIELDS, FIELDS, ROLE_FIELDS
from app.responses.models import Submission

# Excel refuses longer sheet names and these characters in them.
MAX_SHEET_NAME = 31
_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
# Excel's own limit per cell; the timeline shortens long answers well below it.
MAX_CELL_TEXT = 32_767
TIMELINE_VALUE_CHARS = 200
# Level 1 deflate is several times faster than the default 6 and the file is only ~1.5x larger,
# which matters for a 50-team workbook of long answers.
COMPRESS_LEVEL = 1

LABELS: dict[str, dict[str, str]] = {
    "ja": {
        "group_incident": "想定されるインシデント",
        "group_announcement": "想定される発表内容",
        "group_roles": "担当などの確認",
        "group_decision": "公表判断と所要時間",
        "no": "No",
        "incident": "インシデント",
        "source": "情報元",
        "receiving": "受付部門",
        "actual_time": "実際の所要時間（分）",
        "submitted_at": "提出時刻（UTC）",
        "submitted_by": "提出者",
        "delivered_at": "配信時刻（UTC）",
        "summary": "概要",
        "comparison": "比較",
        "stakeholders": "担当マップ",
        "evaluation": "評価",
        "plan": "改善計画",
        "timeline": "タイムライン",
        "summary_title": "演習の概要",
        "exercise": "演習名",
        "date": "実施日",
        "facilitator": "ファシリテーター",
        "status": "状態",
        "started_at": "開始（UTC）",
        "ended_at": "終了（UTC）",
        "teams_members": "チームとメンバー",
        "team": "チーム",
        "members": "メンバー",
        "member_count": "人数",
        "injects": "インジェクト",
        "team_count": "対象チーム数",
        "submitted_count": "提出チーム数",
        "timing_title": "提出までの時間（分）",
        "field": "項目",
        "not_delivered": "（未配信）",
        "role": "担当",
        "evaluation_title": "ファシリテーターによる評価",
        "rating": "評価",
        "comment": "コメント",
        "strengths": "強み",
        "areas": "改善すべき点",
        "plan_title": "改善計画",
        "issue": "課題",
        "action": "対応策",
        "owner": "担当者",
        "due_date": "期限",
        "plan_status": "状況",
        "time": "時刻（UTC）",
        "seq": "Seq",
        "type": "種類",
        "detail": "内容",
        "all_teams": "全チーム",
        "facilitators": "ファシリテーターのみ",
        "yes": "公表する",
        "no_disclose": "公表しない",
        "undecided": "未定",
        "met": "達成",
        "partly": "一部達成",
        "not_met": "未達成",
        "open": "未着手",
        "in_progress": "対応中",
        "to_verify": "実施確認待ち",
        "done": "完了",
        "draft": "準備中",
        "running": "実施中",
        "paused": "一時停止",
        "ended": "終了",
        "chart_title": "提出までの時間（分）",
        "subject": "インシデント対応ワークショップ 振り返り",
    },
    "en": {
        "group_incident": "Expected incident",
        "group_announcement": "Expected announcement",
        "group_roles": "Who is in charge",
        "group_decision": "Decision and timing",
        "no": "No",
        "incident": "Incident",
        "source": "Source",
        "receiving": "Receiving department",
        "actual_time": "Actual time to submit (min)",
        "submitted_at": "Submitted at (UTC)",
        "submitted_by": "Submitted by",
        "delivered_at": "Delivered at (UTC)",
        "summary": "Summary",
        "comparison": "Comparison",
        "stakeholders": "Stakeholder map",
        "evaluation": "Evaluation",
        "plan": "Improvement plan",
        "timeline": "Timeline",
        "summary_title": "Exercise summary",
        "exercise": "Exercise",
        "date": "Date",
        "facilitator": "Facilitator",
        "status": "Status",
        "started_at": "Started (UTC)",
        "ended_at": "Ended (UTC)",
        "teams_members": "Teams and members",
        "team": "Team",
        "members": "Members",
        "member_count": "People",
        "injects": "Injects",
        "team_count": "Teams targeted",
        "submitted_count": "Teams submitted",
        "timing_title": "Time to submit (minutes)",
        "field": "Field",
        "not_delivered": "(not delivered)",
        "role": "Function",
        "evaluation_title": "Facilitator's evaluation",
        "rating": "Rating",
        "comment": "Comment",
        "strengths": "Strengths",
        "areas": "Areas for improvement",
        "plan_title": "Improvement plan",
        "issue": "Issue",
        "action": "Corrective action",
        "owner": "Owner",
        "due_date": "Due date",
        "plan_status": "Status",
        "time": "Time (UTC)",
        "seq": "Seq",
        "type": "Type",
        "detail": "Detail",
        "all_teams": "All teams",
        "facilitators": "Facilitators only",
        "yes": "Disclose",
        "no_disclose": "Do not disclose",
        "undecided": "Undecided",
        "met": "Met",
        "partly": "Partly met",
        "not_met": "Not met",
        "open": "Open",
        "in_progress": "In progress",
        "to_verify": "To verify",
        "done": "Done",
        "draft": "Draft",
        "running": "Running",
        "paused": "Paused",
        "ended": "Ended",
        "chart_title": "Time to submit (minutes)",
        "subject": "Incident-response workshop debrief",
    },
}

# Column layout of a team sheet: the handout's 17 columns, then the debrief's additions.
HANDOUT_COLUMNS = 4 + len(ANNOUNCEMENT_FIELDS) + len(ROLE_FIELDS)
EXTRA_COLUMNS = (
    "disclose",
    "estimated_time",
    "actual_time",
    "submitted_at",
    "submitted_by",
    "notes",
)
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"

BOLD = Font(bold=True)
TITLE_FONT = Font(bold=True, size=14)
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
GROUP_FILL = PatternFill("solid", fgColor="BDD7EE")
GAP_FILL = PatternFill("solid", fgColor="FCE4D6")
WRAP = Alignment(wrap_text=True, vertical="top")
CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
THIN = Side(style="thin", color="999999")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
# The few cell styles of the workbook, registered once per workbook (see Styles).
STYLES: dict[str, dict[str, Any]] = {
    "wrap": {"alignment": WRAP},
    "bold": {"font": BOLD},
    "title": {"font": TITLE_FONT},
    "label": {"font": BOLD, "alignment": WRAP},
    "header": {"font": BOLD, "fill": HEADER_FILL, "alignment": CENTER, "border": BOX},
    "group": {"font": BOLD, "fill": GROUP_FILL, "alignment": CENTER},
    "gap": {"fill": GAP_FILL},
    "time": {"number_format": DATETIME_FORMAT},
    "day": {"number_format": "yyyy-mm-dd"},
}


def clean_text(value: str) -> str:
    """The text without the control characters an XLSX file cannot hold."""
    return ILLEGAL_CHARACTERS_RE.sub("", value)


def as_cell_time(value: datetime) -> datetime:
    """Excel has no time zones: times are written as naive UTC (the headers say UTC)."""
    return value.astimezone(UTC).replace(tzinfo=None)


def minutes(submission: Submission | None) -> float | None:
    return round(submission.elapsed_s / 60, 1) if submission is not None else None


def unique_sheet_names(wanted: Sequence[str], *, reserved: Iterable[str] = ()) -> list[str]:
    """Valid, distinct sheet names: no forbidden characters, at most 31 characters, no repeats."""
    taken = {name.casefold() for name in reserved}
    names = []
    for raw in wanted:
        base = _SHEET_NAME_FORBIDDEN.sub("_", clean_text(raw)).strip().strip("'").strip()
        base = base[:MAX_SHEET_NAME] or "Team"
        name, counter = base, 1
        while name.casefold() in taken:
            counter += 1
            suffix = f" ({counter})"
            name = base[: MAX_SHEET_NAME - len(suffix)].rstrip() + suffix
        taken.add(name.casefold())
        names.append(name)
    return names


class Sheet:
    """One sheet being filled: its openpyxl frame (widths, merges, panes) and its grid of cells."""

    def __init__(self, ws: Worksheet, grid: Grid, styles: dict[str, int], clean: Any) -> None:
        self.ws, self.grid, self.styles, self._clean = ws, grid, styles, clean

    def text(self, row: int, column: int, value: str, style: str = "wrap") -> None:
        """Participant or scenario text, always as text: never a formula, never a broken file."""
        self.grid.put(row, column, self._clean(value), self.styles[style] if style else 0)

    def value(self, row: int, column: int, value: int | float | None, style: str = "") -> None:
        """A number (None leaves the cell empty, but styled)."""
        if value is not None or style:
            self.grid.put(row, column, value, self.styles[style] if style else 0)

    def time(self, row: int, column: int, value: datetime | None) -> None:
        if value is not None:
            self.grid.put(row, column, as_cell_time(value), self.styles["time"])

    def label(self, row: int, column: int, value: str, style: str = "bold") -> None:
        """One of the workbook's own labels."""
        self.grid.put(row, column, value, self.styles[style])

    def header(self, row: int, labels: Sequence[str], *, start: int = 1) -> None:
        for offset, label in enumerate(labels):
            self.grid.put(row, start + offset, self._clean(label), self.styles["header"])


class WorkbookBuilder:
    """Writes one exercise's results into a new workbook, in the exercise's language."""

    def __init__(self, results: Results) -> None:
        self.results = results
        self.locale = "ja" if results.exercise.locale == "ja" else "en"
        self.text = LABELS[self.locale]
        self.team_names = {team.id: team.name for team in results.teams}
        self.inject_by_id = {inject.id: inject for inject in results.injects}
        self.field_labels = {field.key: field.label(self.locale) for field in FIELDS}
        self.wb = Workbook()
        self.styles = {name: style_id(self.wb, **style) for name, style in STYLES.items()}
        self.grids: dict[str, Grid] = {}
        # Each answer appears on its team sheet, the comparison and maybe the stakeholder map;
        # cleaning it once saves scanning 5000 characters again.
        self._cleaned: dict[str, str] = {}

    def _clean(self, value: str) -> str:
        cleaned = self._cleaned.get(value)
        if cleaned is None:
            cleaned = self._cleaned[value] = clean_text(value)[:MAX_CELL_TEXT]
        return cleaned

    def _sheet(self, ws: Worksheet) -> Sheet:
        grid = self.grids.setdefault(ws.title, Grid())
        return Sheet(ws, grid, self.styles, self._clean)

    def build(self) -> bytes:
        """The workbook's bytes."""
        t = self.text
        fixed = [t["summary"], t["comparison"], t["stakeholders"]]
        fixed += [t["evaluation"], t["plan"], t["timeline"]]
        team_sheets = unique_sheet_names([team.name for team in self.results.teams], reserved=fixed)
        summary = self.wb.active
        assert summary is not None
        summary.title = t["summary"]
        self._summary(self._sheet(summary))
        for team, name in zip(self.results.teams, team_sheets, strict=True):
            self._team_sheet(self._sheet(self.wb.create_sheet(name)), team.id)
        self._comparison(self._sheet(self.wb.create_sheet(t["comparison"])))
        self._stakeholders(self._sheet(self.wb.create_sheet(t["stakeholders"])))
        self._evaluation(self._sheet(self.wb.create_sheet(t["evaluation"])))
        self._plan(self._sheet(self.wb.create_sheet(t["plan"])))
        self._timeline(self._sheet(self.wb.create_sheet(t["timeline"])))
        for ws in self.wb.worksheets:
            _print_ready(ws)
        self._properties()
        buffer = io.BytesIO()
        with ZipFile(
            buffer, "w", ZIP_DEFLATED, allowZip64=True, compresslevel=COMPRESS_LEVEL
        ) as archive:
            FastExcelWriter(self.wb, archive, self.grids).save()
        return buffer.getvalue()

    def _properties(self) -> None:
        exercise = self.results.exercise
        props = self.wb.properties
        props.title = clean_text(exercise.title)[:255]
        props.subject = self.text["subject"]
        props.creator = clean_text(self.results.facilitator)[:255] or "tabletop"
        props.keywords = "tabletop, incident response, JNSA, debrief"
        props.description = f"{self.text['subject']}: {clean_text(exercise.title)}"[:1000]
        props.language = self.locale
        props.created = datetime.now(UTC).replace(tzinfo=None)
        props.modified = props.created

    def _choice(self, key: str, value: str) -> str:
        if key == "disclose" and value in ("yes", "no", "undecided"):
            return self.text["no_disclose" if value == "no" else value]
        return value

    # --- team sheets: the handout the participants know -------------------------------------

    def _team_sheet(self, sheet: Sheet, team_id: str) -> None:
        t, results, ws = self.text, self.results, sheet.ws
        groups = (
            (1, 4, t["group_incident"]),
            (5, 4 + len(ANNOUNCEMENT_FIELDS), t["group_announcement"]),
            (5 + len(ANNOUNCEMENT_FIELDS), HANDOUT_COLUMNS, t["group_roles"]),
            (HANDOUT_COLUMNS + 1, HANDOUT_COLUMNS + len(EXTRA_COLUMNS), t["group_decision"]),
        )
        for first, last, label in groups:
            sheet.label(1, first, label, "group")
            ws.merge_cells(start_row=1, start_column=first, end_row=1, end_column=last)
        extra_labels = [
            self.field_labels["disclose"],
            self.field_labels["estimated_time"],
            t["actual_time"],
            t["submitted_at"],
            t["submitted_by"],
            self.field_labels["notes"],
        ]
        headers = [t["no"], t["incident"], t["source"], t["receiving"]]
        headers += [f.label(self.locale) for f in (*ANNOUNCEMENT_FIELDS, *ROLE_FIELDS)]
        sheet.header(2, headers + extra_labels)
        matrix = [f.key for f in (*ANNOUNCEMENT_FIELDS, *ROLE_FIELDS)]
        for row, inject in enumerate(results.injects_of(team_id), start=3):
            cells = results.cells.get((team_id, inject.id), {})
            sheet.value(row, 1, inject.position, "wrap")
            sheet.text(row, 2, inject.title)
            sheet.text(row, 3, inject.source)
            sheet.text(row, 4, inject.receiving)
            for column, key in enumerate(matrix, start=5):
                cell = cells.get(key)
                if cell is not None and cell.value:
                    sheet.text(row, column, cell.value)
            column = HANDOUT_COLUMNS + 1
            disclose = cells.get("disclose")
            if disclose is not None and disclose.value:
                sheet.text(row, column, self._choice("disclose", disclose.value))
            estimated = cells.get("estimated_time")
            if estimated is not None and estimated.value:
                sheet.text(row, column + 1, estimated.value)
            submission = results.submissions.get((team_id, inject.id))
            if submission is not None:
                sheet.value(row, column + 2, minutes(submission))
                sheet.time(row, column + 3, submission.submitted_at)
                sheet.text(row, column + 4, submission.submitted_by)
            notes = cells.get("notes")
            if notes is not None and notes.value:
                sheet.text(row, column + 5, notes.value)
        widths = [5, 40, 14, 14] + [30] * (HANDOUT_COLUMNS - 4) + [12, 16, 12, 19, 14, 30]
        _widths(ws, widths)
        ws.freeze_panes = "C3"
        ws.print_title_rows = "1:2"

    # --- summary ---------------------------------------------------------------------------

    def _summary(self, sheet: Sheet) -> None:
        t, results, exercise, ws = self.text, self.results, self.results.exercise, sheet.ws
        sheet.label(1, 1, t["summary_title"], "title")
        when = exercise.started_at or exercise.created_at
        facts: list[tuple[str, Any]] = [
            (t["exercise"], exercise.title),
            (t["date"], when.astimezone(UTC).date().isoformat()),
            (t["facilitator"], results.facilitator),
            (t["status"], t.get(exercise.status.value, exercise.status.value)),
            (t["started_at"], exercise.started_at),
            (t["ended_at"], exercise.ended_at),
        ]
        row = 3
        for label, value in facts:
            sheet.label(row, 1, label)
            if isinstance(value, datetime) or value is None:
                sheet.time(row, 2, value)
            else:
                sheet.text(row, 2, str(value))
            row += 1

        row += 1
        sheet.label(row, 1, t["teams_members"])
        row += 1
        sheet.header(row, [t["team"], t["members"], t["member_count"]])
        for team in results.teams:
            row += 1
            members = [p.name for p in results.participants.get(team.id, [])]
            sheet.text(row, 1, team.name)
            sheet.text(row, 2, ", ".join(members))
            sheet.value(row, 3, len(members))

        row += 2
        sheet.label(row, 1, t["injects"])
        row += 1
        sheet.header(
            row, [t["no"], t["incident"], t["delivered_at"], t["team_count"], t["submitted_count"]]
        )
        for inject in results.injects:
            row += 1
            targets = results.targets.get(inject.id, [])
            sheet.value(row, 1, inject.position)
            sheet.text(row, 2, inject.title)
            sheet.time(row, 3, inject.delivered_at)
            sheet.value(row, 4, len(targets))
            submitted = sum((team_id, inject.id) in results.submissions for team_id in targets)
            sheet.value(row, 5, submitted)

        row += 2
        sheet.label(row, 1, t["timing_title"])
        row += 1
        header_row = row
        sheet.header(row, [t["team"], *(f"No.{i.position}" for i in results.injects)])
        for team in results.teams:
            row += 1
            sheet.text(row, 1, team.name, style="")
            for column, inject in enumerate(results.injects, start=2):
                sheet.value(row, column, minutes(results.submissions.get((team.id, inject.id))))
        if results.teams and results.injects:
            chart = BarChart()
            chart.type = "bar"
            chart.grouping = "clustered"
            chart.title = t["chart_title"]
            chart.y_axis.title = t["timing_title"]
            chart.x_axis.title = t["team"]
            data = Reference(
                ws, min_col=2, max_col=1 + len(results.injects), min_row=header_row, max_row=row
            )
            categories = Reference(ws, min_col=1, min_row=header_row + 1, max_row=row)
            chart.add_data(data, titles_from_data=True)
            chart.set_categories(categories)
            chart.width = 24
            chart.height = max(8.0, min(60.0, 0.5 * len(results.teams) * 1.2 + 4))
            ws.add_chart(chart, f"{get_column_letter(len(results.injects) + 3)}{header_row}")
        _widths(ws, [24, 60, 20, 14, 14] + [10] * max(0, len(results.injects) - 4))

    # --- comparison and stakeholder map ----------------------------------------------------

    def _comparison(self, sheet: Sheet) -> None:
        t, results, ws = self.text, self.results, sheet.ws
        sheet.header(1, [t["no"], t["incident"], t["field"], *self._team_labels()])
        row = 1
        for inject in results.injects:
            targets = set(results.targets.get(inject.id, []))
            for field in FIELDS:
                row += 1
                sheet.value(row, 1, inject.position, "wrap")
                sheet.text(row, 2, inject.title)
                sheet.label(row, 3, field.label(self.locale))
                for column, team in enumerate(results.teams, start=4):
                    if team.id not in targets:
                        sheet.label(row, column, t["not_delivered"], "wrap")
                        continue
                    value = results.answer(team.id, inject.id, field.key)
                    if value:
                        sheet.text(row, column, self._choice(field.key, value))
        _widths(ws, [5, 30, 22] + [32] * len(results.teams))
        ws.freeze_panes = "D2"
        ws.print_title_rows = "1:1"

    def _team_labels(self) -> list[str]:
        return [team.name for team in self.results.teams]

    def _stakeholders(self, sheet: Sheet) -> None:
        t, results, ws = self.text, self.results, sheet.ws
        sheet.header(1, [t["role"], t["no"], t["incident"], *self._team_labels()])
        row = 1
        for field in ROLE_FIELDS:
            first = row + 1
            for inject in results.injects:
                row += 1
                targets = set(results.targets.get(inject.id, []))
                sheet.value(row, 2, inject.position, "wrap")
                sheet.text(row, 3, inject.title)
                for column, team in enumerate(results.teams, start=4):
                    if team.id not in targets:
                        continue
                    value = results.answer(team.id, inject.id, field.key)
                    if value:
                        sheet.text(row, column, value)
                    else:
                        # An unanswered "who is in charge" is the gap the debrief looks for.
                        sheet.value(row, column, None, "gap")
            if row >= first:
                sheet.label(first, 1, field.label(self.locale), "label")
                if row > first:
                    ws.merge_cells(start_row=first, start_column=1, end_row=row, end_column=1)
        _widths(ws, [22, 5, 30] + [28] * len(results.teams))
        ws.freeze_panes = "D2"
        ws.print_title_rows = "1:1"

    # --- evaluation, improvement plan, timeline ----------------------------------------------

    def _evaluation(self, sheet: Sheet) -> None:
        t, results, ws = self.text, self.results, sheet.ws
        sheet.label(1, 1, t["evaluation_title"], "title")
        sheet.header(
            3, [t["team"], t["no"], t["incident"], t["rating"], t["comment"], t["actual_time"]]
        )
        row = 3
        for team in results.teams:
            for inject in results.injects_of(team.id):
                row += 1
                rating = results.ratings.get((team.id, inject.id))
                sheet.text(row, 1, team.name)
                sheet.value(row, 2, inject.position)
                sheet.text(row, 3, inject.title)
                if rating is not None and rating.rating:
                    sheet.text(row, 4, t.get(rating.rating, rating.rating), style="")
                if rating is not None and rating.comment:
                    sheet.text(row, 5, rating.comment)
                sheet.value(row, 6, minutes(results.submissions.get((team.id, inject.id))))
        evaluation = results.evaluation
        for key, items in (
            ("strengths", evaluation.strengths if evaluation else []),
            ("areas", evaluation.areas_for_improvement if evaluation else []),
        ):
            row += 2
            sheet.label(row, 1, t[key])
            for number, item in enumerate(items, start=1):
                row += 1
                sheet.value(row, 2, number)
                sheet.text(row, 3, item)
                ws.merge_cells(start_row=row, start_column=3, end_row=row, end_column=6)
        _widths(ws, [20, 5, 40, 12, 60, 14])
        ws.freeze_panes = "A4"
        ws.print_title_rows = "3:3"

    def _plan(self, sheet: Sheet) -> None:
        t, ws = self.text, sheet.ws
        sheet.label(1, 1, t["plan_title"], "title")
        labels = [t["no"], t["issue"], t["action"], t["owner"], t["due_date"], t["plan_status"]]
        sheet.header(3, labels)
        for row, item in enumerate(self.results.plan, start=4):
            sheet.value(row, 1, item.position + 1)
            sheet.text(row, 2, item.issue)
            sheet.text(row, 3, item.action)
            sheet.text(row, 4, item.owner)
            if item.due_date is not None:
                due = datetime(item.due_date.year, item.due_date.month, item.due_date.day)
                sheet.grid.put(row, 5, due, self.styles["day"])
            sheet.text(row, 6, t.get(item.status, item.status), style="")
        _widths(ws, [5, 45, 45, 20, 12, 12])
        ws.freeze_panes = "A4"
        ws.print_title_rows = "3:3"

    def _timeline(self, sheet: Sheet) -> None:
        t, ws = self.text, sheet.ws
        sheet.header(1, [t["time"], t["seq"], t["type"], t["team"], t["detail"]])
        for row, event in enumerate(self.results.events, start=2):
            sheet.time(row, 1, event.at)
            sheet.value(row, 2, event.seq)
            sheet.text(row, 3, event.type, style="")
            sheet.text(row, 4, self._audience(event))
            sheet.text(row, 5, self._describe(event))
        _widths(ws, [19, 8, 12, 20, 90])
        ws.freeze_panes = "A2"
        ws.print_title_rows = "1:1"

    def _audience(self, event: EventRow) -> str:
        if event.team_ids is None:
            return self.text["all_teams"]
        if not event.team_ids:
            return self.text["facilitators"]
        return ", ".join(self.team_names.get(team_id, team_id) for team_id in event.team_ids)

    def _describe(self, event: EventRow) -> str:
        """One readable line per event; long answers are shortened, the team sheets have them whole."""
        payload = event.payload
        inject = self.inject_by_id.get(str(payload.get("inject_id", "")))
        number = f"No.{inject.position} " if inject is not None else ""
        if event.type == "response":
            value = str(payload.get("value", ""))
            if len(value) > TIMELINE_VALUE_CHARS:
                value = value[:TIMELINE_VALUE_CHARS] + "…"
            label = self.field_labels.get(str(payload.get("field")), str(payload.get("field")))
            return (
                f"{number}{label} v{payload.get('version')} ({payload.get('updated_by')}): {value}"
            )
        if event.type == "submission":
            return f"{number}{self.text['submitted_by']}: {payload.get('submitted_by')}"
        if event.type == "inject" and isinstance(payload.get("inject"), dict):
            delivered = payload["inject"]
            return f"No.{delivered.get('position')} {delivered.get('title')}"
        if event.type == "status":
            status = str(payload.get("status"))
            return self.text.get(status, status)
        if event.type == "message":
            return str(payload.get("text", ""))
        if event.type == "team" and isinstance(payload.get("team"), dict):
            return str(payload["team"].get("name", ""))
        return ", ".join(f"{key}={value}" for key, value in payload.items())[:MAX_CELL_TEXT]


def _widths(ws: Worksheet, widths: Sequence[float]) -> None:
    for index, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width


def _print_ready(ws: Worksheet) -> None:
    """A4 landscape, every column on one page width, as many pages down as needed."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.5


def build_workbook(results: Results) -> bytes:
    """The debrief workbook of an exercise as XLSX bytes."""
    return WorkbookBuilder(results).build()

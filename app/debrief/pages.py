"""The debrief page: answers side by side, timings, revision history, guidance and the evaluation."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app import i18n
from app.db import SessionDep
from app.exercises import service as exercises
from app.exercises.pages import PageFacilitator
from app.responses.fields import FIELDS

router = APIRouter(include_in_schema=False)

# The page's own words in both languages, so the debrief reads naturally in Japanese too.
PAGE_TEXT: dict[str, dict[str, str]] = {
    "ja": {
        "title": "振り返り",
        "console": "コンソールへ戻る",
        "workbook": "ワークブックをダウンロード（XLSX）",
        "archive": "アーカイブをダウンロード（JSON）",
        "loading": "読み込み中…",
        "no_injects": "まだインジェクトが配信されていません。",
        "delivered": "配信",
        "timing": "提出までの時間",
        "minutes": "分",
        "not_submitted": "未提出",
        "field": "項目",
        "guidance": "模範解答の指針",
        "not_delivered": "未配信",
        "history": "履歴",
        "history_of": "回答の変遷",
        "close": "閉じる",
        "version": "版",
        "evaluation": "ファシリテーターによる評価",
        "team": "チーム",
        "inject": "インジェクト",
        "rating": "評価",
        "comment": "コメント",
        "none": "—",
        "met": "達成",
        "partly": "一部達成",
        "not_met": "未達成",
        "strengths": "強み（1行に1項目）",
        "areas": "改善すべき点（1行に1項目）",
        "plan": "改善計画",
        "issue": "課題",
        "action": "対応策",
        "owner": "担当者",
        "due_date": "期限",
        "status": "状況",
        "open": "未着手",
        "in_progress": "対応中",
        "to_verify": "実施確認待ち",
        "done": "完了",
        "add_row": "行を追加",
        "remove_row": "削除",
        "save": "評価を保存",
        "saved": "保存しました",
        "error": "保存できませんでした：",
    },
    "en": {
        "title": "Debrief",
        "console": "Back to the console",
        "workbook": "Download workbook (XLSX)",
        "archive": "Download archive (JSON)",
        "loading": "Loading…",
        "no_injects": "No inject has been delivered yet.",
        "delivered": "Delivered",
        "timing": "Time to submit",
        "minutes": "min",
        "not_submitted": "not submitted",
        "field": "Field",
        "guidance": "Model-answer guidance",
        "not_delivered": "not delivered",
        "history": "History",
        "history_of": "How the answer evolved",
        "close": "Close",
        "version": "v",
        "evaluation": "Facilitator's evaluation",
        "team": "Team",
        "inject": "Inject",
        "rating": "Rating",
        "comment": "Comment",
        "none": "—",
        "met": "Met",
        "partly": "Partly met",
        "not_met": "Not met",
        "strengths": "Strengths (one per line)",
        "areas": "Areas for improvement (one per line)",
        "plan": "Improvement plan",
        "issue": "Issue",
        "action": "Corrective action",
        "owner": "Owner",
        "due_date": "Due date",
        "status": "Status",
        "open": "Open",
        "in_progress": "In progress",
        "to_verify": "To verify",
        "done": "Done",
        "add_row": "Add a row",
        "remove_row": "Remove",
        "save": "Save the evaluation",
        "saved": "Saved",
        "error": "Could not save: ",
    },
}


@router.get("/exercises/{exercise_id}/debrief", response_class=HTMLResponse)
def debrief_page(
    exercise_id: str, request: Request, session: SessionDep, facilitator: PageFacilitator
) -> Response:
    """The facilitator's debrief of one exercise; the data comes from the debrief API."""
    exercise = exercises.get_owned(session, exercise_id=exercise_id, owner=facilitator)
    locale = i18n.negotiate(request, default=exercise.locale)
    text = PAGE_TEXT[locale]
    labels = {field.key: field.label(locale) for field in FIELDS}
    context = {"exercise": exercise, "text": text, "labels": labels}
    return i18n.render(request, "debrief/debrief.html", context, locale=locale)

"""Locale negotiation, gettext catalogs and the localized page renderer."""

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.support import NullTranslations, Translations
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.datastructures import URL
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import DomainError

LOCALES = ("ja", "en")
DEFAULT_LOCALE = "ja"
LOCALE_COOKIE = "tabletop_lang"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated when the page is rendered."""
    return message


# The words the browser scripts show, sent with each page in its language.
JS_MESSAGES = {
    "online": N_("Online"),
    "offline": N_("Offline: your edits are kept and will be sent when the connection returns"),
    "connecting": N_("Connecting…"),
    "saving": N_("Saving…"),
    "saved": N_("Saved"),
    "unsent": N_("Not sent yet"),
    "held": N_("Kept; sent when the exercise resumes"),
    "new_inject": N_("New inject"),
    "editing": N_("editing"),
    "conflict": N_("Someone else changed this answer at the same time."),
    "theirs_by": N_("Their version (by %(name)s)"),
    "mine": N_("Your version"),
    "submitted": N_("Submitted"),
    "submitted_after": N_("Submitted after %(time)s"),
    "submit_confirm": N_("Submit this answer to the facilitator?"),
    "submit_offline": N_("You are offline; submit again when the connection returns."),
    "overdue": N_("Overdue"),
    "remaining": N_("%(time)s left"),
    "elapsed": N_("Elapsed"),
    "paused": N_("Paused"),
    "ended": N_("Ended"),
    "draft": N_("Not started"),
    "running": N_("Running"),
    "nobody_online": N_("Nobody online"),
    "pushed": N_("Inject delivered."),
    "inject_unknown": N_(
        "The connection dropped before the server answered. Check the list of injects "
        "before you send it again."
    ),
    "sent": N_("Message sent."),
    "signed_out": N_("Your session has ended; sign in again."),
    "forbidden": N_("You are not allowed to see this page."),
    "error": N_("Something went wrong: %(detail)s"),
    "choose_team": N_("Choose at least one team."),
    "message_from": N_("Message from the facilitator"),
    "no_injects": N_("No inject yet. The facilitator will send one shortly."),
    "fields_filled": N_("%(n)s of %(total)s filled"),
    "end": N_("End"),
    "confirm_end": N_("Click again to end the exercise"),
    "not_connected": N_("Not connected"),
    "remove_named": N_("Remove %(name)s"),
    "remove_question": N_("Remove %(name)s?"),
    "participant_removed": N_("%(name)s was removed."),
    "removed": N_("Removed from the exercise"),
    "limit_invalid": N_("Give the time limit as whole minutes from 1 to 600, or leave it empty."),
}


def js_strings(locale: str) -> dict[str, str]:
    """The browser scripts' words in `locale`."""
    return {key: gettext(locale, message) for key, message in JS_MESSAGES.items()}


def lang_url(request: Request, locale: str) -> str:
    """The current page in another language (path and query only, never another host)."""
    url = URL(str(request.url)).include_query_params(lang=locale)
    return f"{url.path}?{url.query}"


def _supported(value: str | None) -> str | None:
    if not value:
        return None
    primary = value.strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in LOCALES else None


def accept_language(header: str) -> str | None:
    """The best supported language of an Accept-Language header, honouring q-values."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if (locale := _supported(tag)) and quality > 0:
            ranked.append((-quality, index, locale))
    return min(ranked)[2] if ranked else None


def negotiate(request: Request, *, default: str | None = None) -> str:
    """`?lang=`, then the language cookie, then the exercise's locale, then the browser's, then ja."""
    return (
        _supported(request.query_params.get("lang"))
        or _supported(request.cookies.get(LOCALE_COOKIE))
        or _supported(default)
        or accept_language(request.headers.get("accept-language", ""))
        or DEFAULT_LOCALE
    )


@lru_cache
def translations(locale: str) -> NullTranslations:
    """The compiled catalog of a locale (English msgids are their own translation)."""
    return Translations.load(str(LOCALE_DIR), [locale], domain="messages")


@lru_cache
def environment(locale: str) -> Environment:
    """One Jinja environment per locale, so a request never sees another's translations."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html", "svg"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.globals["locale"] = locale
    env.globals["locales"] = LOCALES
    env.globals["js_strings"] = js_strings
    env.globals["lang_url"] = lang_url
    return env


def gettext(locale: str, message: str) -> str:
    """Translate one message outside a template."""
    return translations(locale).gettext(message)


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    locale: str,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page in `locale`; a `?lang=` choice is remembered in a cookie."""
    page = environment(locale).get_template(template)
    html = page.render(request=request, **(context or {}))
    response = HTMLResponse(html, status_code=status_code)
    if _supported(request.query_params.get("lang")):
        response.set_cookie(
            LOCALE_COOKIE, locale, max_age=365 * 24 * 3600, samesite="lax", path="/"
        )
    return response


FALLBACK_ERROR_TITLE = N_("Something went wrong")
ERROR_TITLES = {
    401: N_("Please sign in"),
    403: N_("Not allowed"),
    404: N_("Page not found"),
    409: N_("Not possible right now"),
}


def _wants_page(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/ws/", "/static/", "/healthz", "/openapi", "/docs", "/redoc")):
        return False
    return "text/html" in request.headers.get("accept", "")


def _html_or(json_handler: Any) -> Any:
    async def handler(request: Request, exc: Exception) -> Response:
        response: Response = await json_handler(request, exc)
        if not _wants_page(request):
            return response
        try:
            detail = json.loads(bytes(response.body)).get("detail", "")
        except (ValueError, AttributeError):
            detail = ""
        locale = negotiate(request)
        status = response.status_code
        title = gettext(locale, ERROR_TITLES.get(status, FALLBACK_ERROR_TITLE))
        page = render(
            request,
            "error.html",
            {"title": title, "detail": detail},
            locale=locale,
            status_code=status,
        )
        for name in ("www-authenticate", "retry-after"):
            if name in response.headers:
                page.headers[name] = response.headers[name]
        return page

    return handler


def install_html_error_pages(app: FastAPI) -> None:
    """Browser pages get a localized HTML error page; the API keeps its JSON errors."""
    for exc_class in (DomainError, StarletteHTTPException, RequestValidationError, Exception):
        json_handler = app.exception_handlers.get(exc_class)
        if json_handler is not None:
            app.add_exception_handler(exc_class, _html_or(json_handler))

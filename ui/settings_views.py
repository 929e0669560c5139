"""The person's own settings: the language the pages speak to them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import locale_service
from api.deps import DbSession
from api.errors import ApiError
from ui import i18n
from ui.pages import User, check_csrf, render

router = APIRouter(include_in_schema=False)


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request, user: User, saved: str = "") -> HTMLResponse:
    return render(request, "settings.html", languages=i18n.LOCALES, saved=bool(saved))


@router.post("/settings", response_class=HTMLResponse)
async def save_settings(
    request: Request,
    user: User,
    session: DbSession,
    locale: Annotated[str, Form(max_length=32)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    check_csrf(user, csrf_token)
    try:
        await locale_service.set_locale(session=session, principal=user, locale=locale, source="ui")
    except ApiError as err:
        return render(
            request,
            "settings.html",
            err.status_code,
            languages=i18n.LOCALES,
            saved=False,
            error=err.detail,
        )
    return RedirectResponse("/settings?saved=1", status_code=303)

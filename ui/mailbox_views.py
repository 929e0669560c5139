"""The Mailbox page: the mail of the embedded default (no SMTP host set), so a demo shows what
Lotline sends. A person sees the mail addressed to them; administrators see all of it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from api.deps import AppSettings, DbSession
from erp.models import MailboxMessage, Outbox
from ui.pages import User, render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100


@router.get("/mailbox", response_class=HTMLResponse)
async def mailbox(
    request: Request,
    user: User,
    session: DbSession,
    settings: AppSettings,
    everyone: Annotated[bool, Query()] = False,
) -> Response:
    show_all = everyone and user.is_admin
    query = select(MailboxMessage)
    if not show_all:
        query = query.where(MailboxMessage.user_id == user.user_id)
    messages = list(
        await session.scalars(query.order_by(MailboxMessage.id.desc()).limit(PAGE_SIZE))
    )
    failed: int | None = 0
    if user.is_admin:  # what the dispatcher gave up on: an administrator should look
        failed = await session.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.status == "failed")
        )
    return render(
        request,
        "mailbox.html",
        messages=messages,
        show_all=show_all,
        failed=failed or 0,
        smtp=bool(settings.smtp_host),
    )

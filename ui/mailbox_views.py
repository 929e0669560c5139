"""The Mailbox page: the mail of the embedded default (no SMTP host set), so a demo shows what
Lotline sends. A person sees the mail addressed to them; administrators see all of it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select

from api import outbox_service
from api.deps import AppSettings, DbSession
from erp.models import MailboxMessage, Outbox
from ui.pages import User, check_csrf, render

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
    failed_rows: list[Outbox] = []
    if user.is_admin:  # what the dispatcher gave up on: an administrator should look
        failed = await session.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.status == "failed")
        )
        failed_rows = list(
            await session.scalars(
                select(Outbox)
                .where(Outbox.status == "failed")
                .order_by(Outbox.id.desc())
                .limit(PAGE_SIZE)
            )
        )
    return render(
        request,
        "mailbox.html",
        messages=messages,
        show_all=show_all,
        failed=failed or 0,
        failed_rows=failed_rows,
        smtp=bool(settings.smtp_host),
    )


@router.post("/mailbox/outbox/{outbox_id}/retry")
async def retry_outbox(
    outbox_id: Annotated[int, Path(ge=1, le=2_147_483_647)],
    user: User,
    session: DbSession,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """The Retry button of a failed message (administrators): back to pending, audited."""
    check_csrf(user, csrf_token)
    await outbox_service.retry_outbox(session, user, outbox_id, source="ui")
    await session.commit()
    return RedirectResponse("/mailbox?everyone=true", status_code=303)

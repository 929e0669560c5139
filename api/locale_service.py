"""A person's language: a preference of their own, written directly (it belongs to no process),
with its audit row in the same transaction."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import ApiError
from api.security import Principal
from erp.audit import AuditRecord, append_audit
from erp.models import AppUser

# the languages the UI speaks (ui.i18n.LOCALES has their names); kept here so the API needs no UI
LOCALES = ("en", "zh_Hans")


async def set_locale(
    *, session: AsyncSession, principal: Principal, locale: str, source: str
) -> str:
    """Store the caller's language; setting the one already stored changes and records nothing."""
    if not principal.is_person:
        raise ApiError(403, "a language is a person's choice; an API key has none to set")
    if locale not in LOCALES:
        raise ApiError(
            422,
            "%(locale)s is not a language Lotline speaks; choose one of %(choices)s",
            locale=locale[:32],
            choices=", ".join(LOCALES),
        )
    user = await session.scalar(
        select(AppUser).where(AppUser.id == principal.user_id).with_for_update()
    )
    if user is None:  # the session outlived its user
        raise ApiError(401, "your session has ended; log in again")
    if user.locale == locale:
        return locale
    before = user.locale
    user.locale = locale
    await append_audit(
        session,
        AuditRecord(
            actor=principal.username,
            action="user.locale_changed",
            entity_type="user",
            entity_id=user.username,
            before={"locale": before},
            after={"locale": locale},
            source=source,
        ),
    )
    await session.commit()
    return locale

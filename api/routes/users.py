"""People: the caller's own profile and language; their locks (administrators only)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from api import locale_service
from api.deps import CurrentPrincipal, DbSession
from api.errors import Message, forbidden, not_found
from api.security import groups_of
from erp.audit import AuditRecord, append_audit
from erp.models import AppUser

router = APIRouter(prefix="/api/v1/users", tags=["users"])


class UserOut(BaseModel):
    username: str
    full_name: str
    groups: list[str]
    is_active: bool
    is_system: bool
    login_locked_until: datetime | None
    signature_locked_at: datetime | None


class MeOut(BaseModel):
    username: str
    full_name: str
    groups: list[str]
    locale: str


class LocaleIn(BaseModel):
    locale: str  # "en" or "zh_Hans"


@router.get("/me", response_model=MeOut)
async def me(principal: CurrentPrincipal) -> MeOut:
    """Who the caller is and the language the UI shows them."""
    return MeOut(
        username=principal.username,
        full_name=principal.full_name,
        groups=sorted(principal.groups),
        locale=principal.locale,
    )


@router.put("/me/locale", response_model=LocaleIn)
async def set_my_locale(
    body: LocaleIn, principal: CurrentPrincipal, session: DbSession
) -> LocaleIn:
    """Choose the caller's own language (each person sets only their own)."""
    locale = await locale_service.set_locale(
        session=session, principal=principal, locale=body.locale, source="api"
    )
    return LocaleIn(locale=locale)


@router.get("", response_model=list[UserOut])
async def list_users(principal: CurrentPrincipal, session: DbSession) -> list[UserOut]:
    if not principal.is_admin:
        raise forbidden("only administrators may list users")
    users = await session.scalars(select(AppUser).order_by(AppUser.username))
    return [
        UserOut(
            username=u.username,
            full_name=u.full_name,
            groups=sorted(await groups_of(session, u.id)),
            is_active=u.is_active,
            is_system=u.is_system,
            login_locked_until=u.login_locked_until,
            signature_locked_at=u.signature_locked_at,
        )
        for u in users
    ]


@router.post("/{username}/unlock", status_code=204)
async def unlock(username: str, principal: CurrentPrincipal, session: DbSession) -> None:
    """Lift a login lockout and a signing lock after the administrator has checked with the person."""
    if not principal.is_admin or not principal.is_person:
        raise forbidden("only an administrator may unlock an account")
    user = await session.scalar(
        select(AppUser).where(AppUser.username == username[:64]).with_for_update()
    )
    if user is None:
        raise not_found(Message("User %(id)s", id=username[:64]))
    before = {
        "login_locked_until": user.login_locked_until,
        "signature_locked_at": user.signature_locked_at,
    }
    user.failed_login_count = 0
    user.login_locked_until = None
    user.failed_signature_count = 0
    user.signature_locked_at = None
    await append_audit(
        session,
        AuditRecord(
            actor=principal.username,
            action="user.unlocked",
            entity_type="user",
            entity_id=user.username,
            before=before,
            after={"locked": False},
            source="api",
        ),
    )
    await session.commit()

"""Who is calling: UI session cookies, API bearer tokens, and scoped API keys of systems."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import ScalarSelect, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import ApiError
from erp.audit import AuditRecord, append_audit
from erp.db import database_now
from erp.models import ApiKey, AppGroup, AppUser, Delegation, GroupMembership, UserSession
from erp.passwords import new_token, token_digest, verify_password

AUDIT_READERS = frozenset({"admin", "qa", "qa-manager", "quality-director", "ra"})
SESSION_COOKIE = "lotline_session"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `scopes` is None for people (their groups decide)."""

    user_id: int
    username: str
    full_name: str
    groups: frozenset[str]
    via: str  # session | bearer | api_key
    scopes: frozenset[str] | None = None
    session_id: int | None = None
    csrf_token: str = ""
    locale: str = "en"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_person(self) -> bool:
        return self.via != "api_key"

    @property
    def is_admin(self) -> bool:
        return "admin" in self.groups

    def may(self, scope: str) -> bool:
        """People may do what their groups allow; systems only what their key's scopes say."""
        if self.scopes is None:
            if scope == "audit:read":
                return bool(self.groups & AUDIT_READERS)
            if scope == "metrics:read":
                return self.is_admin
            return True
        return scope in self.scopes

    def require(self, scope: str) -> None:
        if not self.may(scope):
            raise ApiError(403, "you are not allowed to do this (%(scope)s is needed)", scope=scope)


async def groups_of(session: AsyncSession, user_id: int) -> frozenset[str]:
    rows = await session.scalars(
        select(AppGroup.name)
        .join(GroupMembership, GroupMembership.group_id == AppGroup.id)
        .where(GroupMembership.user_id == user_id)
    )
    return frozenset(rows)


def _groups_column() -> ScalarSelect[list[str] | None]:
    """The caller's group names as a column of the query that finds them, so authenticating a
    request is one round trip, not two (every request authenticates)."""
    return (
        select(func.array_agg(AppGroup.name))
        .join(GroupMembership, GroupMembership.group_id == AppGroup.id)
        .where(GroupMembership.user_id == AppUser.id)
        .scalar_subquery()
    )


def _principal(user: AppUser, groups: list[str] | None, via: str, **kw: object) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        full_name=user.full_name,
        groups=frozenset(groups or ()),
        via=via,
        locale=user.locale,
        **kw,  # type: ignore[arg-type]
    )


async def principal_from_token(session: AsyncSession, token: str, kind: str) -> Principal | None:
    row = await session.execute(
        select(UserSession, AppUser, _groups_column())
        .join(AppUser, AppUser.id == UserSession.user_id)
        .where(
            UserSession.token_hash == token_digest(token),
            UserSession.kind == kind,
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > func.now(),
            AppUser.is_active.is_(True),
        )
    )
    found = row.first()
    if found is None:
        return None
    user_session, user, groups = found
    return _principal(
        user,
        groups,
        "session" if kind == "ui" else "bearer",
        session_id=user_session.id,
        csrf_token=user_session.csrf_token,
    )


async def principal_from_api_key(session: AsyncSession, key: str) -> Principal | None:
    row = await session.execute(
        select(ApiKey, AppUser, _groups_column())
        .join(AppUser, AppUser.id == ApiKey.user_id)
        .where(
            ApiKey.key_hash == token_digest(key),
            ApiKey.revoked_at.is_(None),
            AppUser.is_active.is_(True),
        )
    )
    found = row.first()
    if found is None:
        return None
    api_key, user, groups = found
    return _principal(user, groups, "api_key", scopes=frozenset(api_key.scopes))


async def authenticate_password(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    max_failures: int,
    lockout: timedelta,
    source: str,
) -> AppUser:
    """Check a login; count failures and lock the account for a while after too many."""
    username = username.strip()[:64]
    user = await session.scalar(select(AppUser).where(AppUser.username == username))
    now = await database_now(session)
    if user is not None and user.login_locked_until and user.login_locked_until > now:
        verify_password(password, None)
        await _audit_login(
            session, username, "login.refused", "account locked after repeated failures", source
        )
        raise ApiError(
            403,
            "This account is locked after repeated failed logins. "
            "Try again after %(time)s UTC or ask an administrator.",
            time=f"{user.login_locked_until:%H:%M}",
        )
    valid = user is not None and user.is_active and not user.is_system
    if not verify_password(password, user.password_hash if valid and user else None) or not valid:
        reason = "wrong username or password"
        if user is not None:
            user.failed_login_count += 1
            if user.failed_login_count >= max_failures:
                user.login_locked_until = now + lockout
                user.failed_login_count = 0
                reason = f"wrong password; account locked for {int(lockout.total_seconds() // 60)} minutes"
        await _audit_login(session, username, "login.failed", reason, source)
        raise ApiError(401, "Wrong username or password.")
    assert user is not None
    user.failed_login_count = 0
    user.login_locked_until = None
    await _audit_login(session, username, "login.succeeded", "", source, outcome="ok")
    return user


async def _audit_login(
    session: AsyncSession,
    username: str,
    action: str,
    reason: str,
    source: str,
    outcome: str = "refused",
) -> None:
    await append_audit(
        session,
        AuditRecord(
            actor=username or "(blank)",
            action=action,
            entity_type="user",
            entity_id=username or "(blank)",
            outcome=outcome,
            reason=reason,
            source=source,
        ),
    )


async def open_session(
    session: AsyncSession, user: AppUser, *, kind: str, hours: int
) -> tuple[str, UserSession]:
    """A new session with a new random token (never reuses one: no session fixation)."""
    token = new_token()
    now = await database_now(session)
    row = UserSession(
        token_hash=token_digest(token),
        user_id=user.id,
        kind=kind,
        csrf_token=secrets.token_urlsafe(24),
        expires_at=now + timedelta(hours=hours),
    )
    session.add(row)
    await session.flush()
    return token, row


async def revoke_session(session: AsyncSession, session_id: int) -> None:
    await session.execute(
        update(UserSession).where(UserSession.id == session_id).values(revoked_at=func.now())
    )


async def revoke_token(session: AsyncSession, token: str, kind: str) -> None:
    """End the session a token names, if it is still live (a login over a browser that still
    holds someone's session ends that session: a shared terminal, a planted cookie)."""
    await session.execute(
        update(UserSession)
        .where(
            UserSession.token_hash == token_digest(token),
            UserSession.kind == kind,
            UserSession.revoked_at.is_(None),
        )
        .values(revoked_at=func.now())
    )


async def active_delegators(session: AsyncSession, delegate_id: int) -> list[AppUser]:
    """The people `delegate_id` stands in for right now."""
    rows = await session.scalars(
        select(AppUser)
        .join(Delegation, Delegation.delegator_id == AppUser.id)
        .where(
            Delegation.delegate_id == delegate_id,
            Delegation.revoked_at.is_(None),
            Delegation.starts_at <= func.now(),
            Delegation.ends_at > func.now(),
            AppUser.is_active.is_(True),
        )
        .order_by(AppUser.username)
    )
    return list(rows)

"""Out-of-office delegations: who stands in for whom, from when to when."""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from api.errors import ApiError, Message, forbidden, not_found
from api.security import Principal
from erp.audit import AuditRecord, append_audit
from erp.models import AppUser, Delegation
from schemas.api import DelegationIn, DelegationOut


async def list_delegations(*, session: AsyncSession, principal: Principal) -> list[DelegationOut]:
    delegator, delegate = aliased(AppUser), aliased(AppUser)
    query = (
        select(Delegation, delegator.username, delegate.username, Delegation.ends_at > func.now())
        .join(delegator, delegator.id == Delegation.delegator_id)
        .join(delegate, delegate.id == Delegation.delegate_id)
        .order_by(Delegation.starts_at.desc())
    )
    if not principal.is_admin:
        query = query.where(
            or_(
                Delegation.delegator_id == principal.user_id,
                Delegation.delegate_id == principal.user_id,
            )
        )
    rows = await session.execute(query)
    return [_out(d, a, b, bool(current)) for d, a, b, current in rows.all()]


def _out(d: Delegation, delegator: str, delegate: str, current: bool) -> DelegationOut:
    return DelegationOut(
        id=d.id,
        delegator=delegator,
        delegate=delegate,
        starts_at=d.starts_at,
        ends_at=d.ends_at,
        reason=d.reason,
        revoked_at=d.revoked_at,
        active=current and d.revoked_at is None,
    )


async def _person(session: AsyncSession, username: str, role: str) -> AppUser:
    user = await session.scalar(select(AppUser).where(AppUser.username == username))
    if user is None or not user.is_active or user.is_system:
        raise ApiError(
            422,
            "%(role)s '%(username)s' is not an active person's username",
            role=role,
            username=username,
        )
    return user


async def create_delegation(
    *, session: AsyncSession, principal: Principal, body: DelegationIn, source: str
) -> DelegationOut:
    if not principal.is_person:
        raise forbidden("systems cannot create delegations")
    if body.delegator and body.delegator != principal.username and not principal.is_admin:
        raise forbidden("only an administrator may delegate on someone else's behalf")
    delegator = await _person(session, body.delegator or principal.username, "delegator")
    delegate = await _person(session, body.delegate, "delegate")
    if delegator.id == delegate.id:
        raise ApiError(422, "a person cannot stand in for themselves; choose another delegate")
    if body.starts_at.tzinfo is None or body.ends_at.tzinfo is None:
        raise ApiError(
            422, "give starts_at and ends_at with a time zone, e.g. 2026-12-01T08:00:00Z"
        )
    if body.ends_at <= body.starts_at:
        raise ApiError(422, "ends_at must be after starts_at")
    now = await session.scalar(select(func.now()))
    assert now is not None
    if body.ends_at <= now:
        raise ApiError(422, "ends_at is in the past; a delegation must end in the future")
    row = Delegation(
        delegator_id=delegator.id,
        delegate_id=delegate.id,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        reason=body.reason,
        created_by_id=principal.user_id,
    )
    session.add(row)
    await session.flush()
    await append_audit(
        session,
        AuditRecord(
            actor=principal.username,
            on_behalf_of=delegator.username if delegator.username != principal.username else None,
            action="delegation.created",
            entity_type="delegation",
            entity_id=str(row.id),
            reason=body.reason,
            after={
                "delegator": delegator.username,
                "delegate": delegate.username,
                "starts_at": body.starts_at.isoformat(),
                "ends_at": body.ends_at.isoformat(),
            },
            source=source,
        ),
    )
    return _out(row, delegator.username, delegate.username, True)


async def revoke_delegation(
    *, session: AsyncSession, principal: Principal, delegation_id: int, source: str
) -> None:
    row = await session.get(Delegation, delegation_id, with_for_update=True)
    if row is None:
        raise not_found(Message("Delegation %(id)s", id=delegation_id))
    if row.delegator_id != principal.user_id and not principal.is_admin:
        raise forbidden("only the delegator or an administrator may revoke this delegation")
    if row.revoked_at is not None:
        raise ApiError(409, "delegation %(id)s is already revoked", id=delegation_id)
    row.revoked_at = await session.scalar(select(func.now()))
    await append_audit(
        session,
        AuditRecord(
            actor=principal.username,
            action="delegation.revoked",
            entity_type="delegation",
            entity_id=str(delegation_id),
            source=source,
        ),
    )

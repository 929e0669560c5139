"""The audit trail: query and verify."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentPrincipal, DbSession
from api.task_service import audit_out
from erp.audit import verify_chain
from erp.queries import audit_query
from erp.signatures import verify_signatures
from schemas.api import AuditList, AuditVerifyOut, SignatureProblemOut

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", response_model=AuditList)
async def query_audit(
    principal: CurrentPrincipal,
    session: DbSession,
    entity_type: Annotated[str | None, Query(max_length=40)] = None,
    entity_id: Annotated[str | None, Query(max_length=300)] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=80)] = None,
    workflow_id: Annotated[str | None, Query(max_length=300)] = None,
    outcome: Annotated[str | None, Query(max_length=20)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> AuditList:
    """Newest first; page with `before_id` = the previous page's `next_before_id`."""
    principal.require("audit:read")
    query = audit_query(
        entity_type=entity_type,
        entity_id=entity_id,
        actor=actor,
        action=action,
        workflow_id=workflow_id,
        outcome=outcome,
        since=since,
        until=until,
        before_id=before_id,
    )
    rows = (await session.scalars(query.limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditList(
        items=[audit_out(r) for r in rows], next_before_id=rows[-1].id if more and rows else None
    )


@router.get("/verify", response_model=AuditVerifyOut)
async def verify(principal: CurrentPrincipal, session: DbSession) -> AuditVerifyOut:
    """Recompute the hash chain and its keyed MACs, name the first broken row, check that the
    chain still reaches its sealed head, and check every e-signature against what it signed."""
    principal.require("audit:read")
    result = await verify_chain(session)
    signatures = await verify_signatures(session)
    return AuditVerifyOut(
        ok=result.ok and signatures.ok,
        rows_checked=result.rows_checked,
        first_broken_id=result.first_broken_id,
        problem=result.problem,
        head_hash=result.head_hash,
        chain_ok=result.ok,
        sealed_id=result.sealed_id,
        keyed=result.keyed,
        signatures_checked=signatures.checked,
        signature_problems=[
            SignatureProblemOut(**asdict(problem)) for problem in signatures.problems
        ],
    )

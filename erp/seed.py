"""Demo data: users in every role, groups, a demo API key, and the master data of one product
family (`erp/seed_master_data.py`). Loaded by `make run` on first start.

The demo password and key below exist only here, for the demo; production users are created by an
administrator with `python -m erp.users`.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp.audit import AuditRecord, append_audit
from erp.models import ApiKey, AppGroup, AppUser, GroupMembership
from erp.passwords import hash_password, token_digest
from erp.seed_master_data import seed_master_data

DEMO_PASSWORD = "lotline-demo"
DEMO_API_KEY = "ll_demo_mes_0123456789abcdef"  # the MES integration of the demo

GROUPS: dict[str, str] = {
    "admin": "System administrators",
    "production": "Production and manufacturing engineering",
    "engineering": "Design and process engineering",
    "buyer": "Purchasing",
    "warehouse": "Receiving, stores and shipping",
    "qc": "Quality control inspectors",
    "qa": "Quality assurance",
    "qa-manager": "Quality assurance managers",
    "quality-director": "Head of quality",
    "mrb": "Material review board",
    "ccb": "Change control board",
    "ra": "Regulatory affairs",
    "systems": "Integrated systems (MES, LIMS, ERP)",
    "purchasing-manager": "Purchasing managers",
    "finance": "Finance approvers",
}

# username, printed name, e-mail, groups
USERS: list[tuple[str, str, str, list[str]]] = [
    ("admin", "Ada Admin", "admin@example.com", ["admin"]),
    ("alice", "Alice Chen", "alice@example.com", ["production", "engineering"]),
    ("bob", "Bob Okafor", "bob@example.com", ["qa", "mrb"]),
    ("carol", "Carol Diaz", "carol@example.com", ["qa", "qa-manager", "mrb", "ccb"]),
    ("dave", "Dave Müller", "dave@example.com", ["quality-director", "ccb"]),
    ("erin", "Erin Li", "erin@example.com", ["ra", "ccb"]),
    ("frank", "Frank Rossi", "frank@example.com", ["buyer"]),
    ("grace", "Grace Kim", "grace@example.com", ["warehouse"]),
    ("heidi", "Heidi Novak", "heidi@example.com", ["qc"]),
    ("ivan", "Ivan Petrov", "ivan@example.com", ["production"]),
    ("judy", "Judy Haas", "judy@example.com", ["buyer", "purchasing-manager"]),
    ("ken", "Ken Watanabe", "ken@example.com", ["finance"]),
]


async def seed_demo(
    sessions: async_sessionmaker[AsyncSession], *, master_data: bool = True
) -> bool:
    """Load the demo users, groups and master data once. Returns False when already there."""
    async with sessions() as session, session.begin():
        if await session.scalar(select(AppUser.id).where(AppUser.username == "admin")):
            return False
        # migrations create the groups their reference data names (e.g. the DoA matrix)
        existing = {g.name: g for g in await session.scalars(select(AppGroup))}
        groups = {
            name: existing.get(name) or AppGroup(name=name, description=d)
            for name, d in GROUPS.items()
        }
        session.add_all(g for name, g in groups.items() if name not in existing)
        password_hash = hash_password(DEMO_PASSWORD)
        for username, name, email, member_of in USERS:
            user = AppUser(
                username=username, full_name=name, email=email, password_hash=password_hash
            )
            session.add(user)
            await session.flush()
            for group in member_of:
                session.add(GroupMembership(user_id=user.id, group_id=groups[group].id))
        mes = AppUser(username="mes", full_name="MES integration", is_system=True)
        session.add(mes)
        await session.flush()
        session.add(GroupMembership(user_id=mes.id, group_id=groups["systems"].id))
        session.add(
            ApiKey(
                name="demo-mes",
                key_hash=token_digest(DEMO_API_KEY),
                scopes=[
                    "processes:start",
                    "processes:read",
                    "events:send",
                    "tasks:read",
                    "lots:read",
                ],
                user_id=mes.id,
            )
        )
        counts = await seed_master_data(session) if master_data else {}
        await append_audit(
            session,
            AuditRecord(
                actor="system",
                action="demo.seeded",
                entity_type="system",
                entity_id="demo",
                reason="demo data loaded on first start",
                after={"users": [u[0] for u in USERS], "groups": list(GROUPS)},
                source="cli",
            ),
        )
        if master_data:
            await append_audit(
                session,
                AuditRecord(
                    actor="system",
                    action="demo.master_data_seeded",
                    entity_type="system",
                    entity_id="demo",
                    reason="demo master data loaded on first start",
                    after=counts,
                    source="cli",
                ),
            )
    return True


async def _main() -> None:
    from erp.db import make_engine, make_session_factory
    from settings import Settings

    engine = make_engine(Settings.from_env().require_database_url())
    loaded = await seed_demo(make_session_factory(engine))
    await engine.dispose()
    print("demo data loaded" if loaded else "demo data already present")


if __name__ == "__main__":
    asyncio.run(_main())

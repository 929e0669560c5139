"""The user administration command on a real database."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from erp import users
from erp.models import ApiKey, AppUser, AuditEntry
from erp.passwords import token_digest, verify_password


async def test_create_group_person_system_and_key(database_url, sessions, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LOTLINE_NEW_PASSWORD", "correct horse battery")
    await users.main(["group", "qa", "Quality assurance"])
    await users.main(["create", "bea", "--name", "Bea Quality", "--groups", "qa"])
    await users.main(["system", "lims", "--name", "LIMS"])
    capsys.readouterr()
    await users.main(["api-key", "lims-1", "--user", "lims", "--scopes", "processes:start"])
    key = capsys.readouterr().out.strip()
    async with sessions() as session:
        bea = await session.scalar(select(AppUser).where(AppUser.username == "bea"))
        stored = await session.scalar(select(ApiKey))
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert bea is not None and verify_password("correct horse battery", bea.password_hash)
    assert stored is not None and stored.key_hash == token_digest(key) and key.startswith("ll_")
    assert actions == ["group.created", "user.created", "user.created", "api_key.created"]
    monkeypatch.setenv("LOTLINE_NEW_PASSWORD", "short")
    with pytest.raises(SystemExit, match="at least 12"):
        await users.main(["create", "cy", "--name", "Cy"])

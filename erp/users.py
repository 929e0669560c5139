"""Administer people, groups and system keys from the command line (uses DATABASE_URL).

    python -m erp.users group qa "Quality assurance"
    python -m erp.users create bob --name "Bob Okafor" --email bob@example.com --groups qa,mrb
    python -m erp.users api-key mes-line-3 --user mes --scopes processes:start,events:send
    python -m erp.users unlock bob

Passwords are read from the terminal (or LOTLINE_NEW_PASSWORD for automation), never from
arguments; an API key is printed once and only its hash is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from erp.audit import AuditRecord, append_audit
from erp.db import make_engine, make_session_factory
from erp.models import ApiKey, AppGroup, AppUser, GroupMembership
from erp.passwords import hash_password, new_token, token_digest

MIN_PASSWORD = 12


def _password() -> str:
    password = os.environ.get("LOTLINE_NEW_PASSWORD") or getpass.getpass("New password: ")
    if len(password) < MIN_PASSWORD:
        raise SystemExit(f"the password must have at least {MIN_PASSWORD} characters")
    return password


async def _audit(session: AsyncSession, action: str, entity: str, after: dict[str, object]) -> None:
    await append_audit(
        session,
        AuditRecord(
            actor=os.environ.get("USER", "cli"),
            action=action,
            entity_type="user",
            entity_id=entity,
            after=after,
            source="cli",
        ),
    )


async def add_group(session: AsyncSession, name: str, description: str) -> None:
    if await session.scalar(select(AppGroup).where(AppGroup.name == name)):
        raise SystemExit(f"group {name} exists already")
    session.add(AppGroup(name=name, description=description))
    await _audit(session, "group.created", name, {"description": description})


async def create_user(session: AsyncSession, args: argparse.Namespace, system: bool) -> None:
    if await session.scalar(select(AppUser).where(AppUser.username == args.username)):
        raise SystemExit(f"user {args.username} exists already")
    groups = [g for g in (args.groups or "").split(",") if g]
    found = {
        g.name: g for g in await session.scalars(select(AppGroup).where(AppGroup.name.in_(groups)))
    }
    missing = sorted(set(groups) - set(found))
    if missing:
        raise SystemExit(f"unknown group(s): {', '.join(missing)}; create them first")
    user = AppUser(
        username=args.username,
        full_name=args.name,
        email=args.email or "",
        password_hash=None if system else hash_password(_password()),
        is_system=system,
    )
    session.add(user)
    await session.flush()
    for group in found.values():
        session.add(GroupMembership(user_id=user.id, group_id=group.id))
    await _audit(session, "user.created", args.username, {"groups": groups, "system": system})


async def create_api_key(session: AsyncSession, name: str, username: str, scopes: str) -> str:
    user = await session.scalar(select(AppUser).where(AppUser.username == username))
    if user is None or not user.is_system:
        raise SystemExit(f"{username} is not a system user; create it with `system` first")
    key = "ll_" + new_token()
    session.add(
        ApiKey(name=name, key_hash=token_digest(key), scopes=scopes.split(","), user_id=user.id)
    )
    await _audit(session, "api_key.created", username, {"name": name, "scopes": scopes.split(",")})
    return key


async def unlock(session: AsyncSession, username: str) -> None:
    user = await session.scalar(select(AppUser).where(AppUser.username == username))
    if user is None:
        raise SystemExit(f"no user {username}")
    user.failed_login_count = 0
    user.login_locked_until = None
    user.failed_signature_count = 0
    user.signature_locked_at = None
    await _audit(session, "user.unlocked", username, {"login": True, "signing": True})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m erp.users",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    group = sub.add_parser("group", help="create a group (a role)")
    group.add_argument("name")
    group.add_argument("description", nargs="?", default="")
    for command in ("create", "system"):
        person = sub.add_parser(
            command, help=f"create a {'person' if command == 'create' else 'system user'}"
        )
        person.add_argument("username")
        person.add_argument("--name", required=True)
        person.add_argument("--email")
        person.add_argument("--groups", help="comma-separated group names")
    key = sub.add_parser("api-key", help="create an API key for a system user; printed once")
    key.add_argument("name")
    key.add_argument("--user", required=True)
    key.add_argument("--scopes", required=True)
    unlock_cmd = sub.add_parser("unlock", help="unlock login and signing after failures")
    unlock_cmd.add_argument("username")
    return parser


async def main(argv: list[str]) -> None:
    from settings import Settings

    args = _parser().parse_args(argv)
    engine = make_engine(Settings.from_env().require_database_url(), pool_size=1)
    try:
        async with make_session_factory(engine)() as session, session.begin():
            if args.command == "group":
                await add_group(session, args.name, args.description)
            elif args.command in ("create", "system"):
                await create_user(session, args, system=args.command == "system")
            elif args.command == "api-key":
                print(await create_api_key(session, args.name, args.user, args.scopes))
            elif args.command == "unlock":
                await unlock(session, args.username)
    finally:
        await engine.dispose()
    print("done", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))

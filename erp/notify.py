"""Notifications, the data side: who an outbox recipient is, which event a row carries, its
stable event id, and how a webhook body is signed. erp/dispatcher.py delivers; docs/notifications.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from erp.mail_wording import without_wording
from erp.models import AppGroup, AppUser, GroupMembership, Outbox
from erp.supply import Customer

# The events a subscription may name ("*" is every one). Each outbox row carries its event in
# payload["event"] (recall notices in payload["type"]).
KNOWN_EVENTS: tuple[str, ...] = (
    "task.opened",
    "task.reminded",
    "task.escalated",
    "digest.daily",
    "signature.locked",
    "purchase_order.issued",
    "shipment.shipped",
    "scar.opened",
    "recall.notice",
    "recall.reminder",
    "recall.status_report",
)
ALL_EVENTS = "*"
SIGNATURE_HEADER = "X-Lotline-Signature"
EVENT_ID_HEADER = "X-Lotline-Event-Id"
EVENT_TYPE_HEADER = "X-Lotline-Event"
TIMESTAMP_HEADER = "X-Lotline-Timestamp"


def event_type(payload: dict[str, Any]) -> str | None:
    """The event an outbox row announces, or None for a row that names none."""
    found = payload.get("event") or payload.get("type")
    if isinstance(found, str) and found:
        return found
    if "recall" in payload and "report" in payload:  # activities/recall.py's status report
        return "recall.status_report"
    return None


def event_id(row: Outbox, kind: str) -> str:
    """Stable over retries and over the rows one transaction writes for the same event (a recall
    notice's e-mail and its webhook copy): receivers de-duplicate on it."""
    canonical = json.dumps(
        without_wording(row.payload), sort_keys=True, separators=(",", ":"), default=str
    )
    seed = f"{kind}|{row.created_at.isoformat()}|{canonical}"
    return "evt_" + hashlib.sha256(seed.encode()).hexdigest()[:32]


def envelope(*, event: str, event_id_: str, created_at: datetime, data: dict[str, Any]) -> bytes:
    """The JSON body of every webhook POST."""
    body = {"id": event_id_, "type": event, "created_at": created_at.isoformat(), "data": data}
    return json.dumps(body, separators=(",", ":"), default=str).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<body>` under the subscription's secret;
    the timestamp is signed so an old delivery cannot be replayed as a new one."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def subscribed(event_types: list[str], event: str) -> bool:
    return ALL_EVENTS in event_types or event in event_types


@dataclass(frozen=True)
class Mailee:
    """One address a mail goes to; `user_id` when it is one of our people."""

    address: str
    user_id: int | None = None
    locale: str = "en"


@dataclass
class Recipients:
    people: list[Mailee] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)  # e.g. "supplier:ACME (no e-mail)"

    def add(self, mailee: Mailee) -> None:
        if all(m.address != mailee.address for m in self.people):
            self.people.append(mailee)


async def expand_recipients(session: AsyncSession, recipient: str) -> Recipients:
    """`user:<name>`, `group:<name>`, `customer:<code>`, `supplier:<code>` or an address, comma
    separated, as mail addresses. A person without an e-mail keeps `user:<name>` as address
    (the mailbox shows it; SMTP cannot send it)."""
    found = Recipients()
    for token in (part.strip() for part in recipient.split(",")):
        if not token:
            continue
        kind, _, name = token.partition(":")
        if kind == "user":
            users = await session.scalars(
                select(AppUser).where(AppUser.username == name, AppUser.is_active.is_(True))
            )
        elif kind == "group":
            users = await session.scalars(
                select(AppUser)
                .join(GroupMembership, GroupMembership.user_id == AppUser.id)
                .join(AppGroup, AppGroup.id == GroupMembership.group_id)
                .where(AppGroup.name == name, AppUser.is_active.is_(True))
                .order_by(AppUser.username)
            )
        elif kind == "customer":
            email = await session.scalar(select(Customer.email).where(Customer.code == name))
            if email:
                found.add(Mailee(email))
            else:
                found.unresolved.append(token)
            continue
        elif "@" in token:
            found.add(Mailee(token))
            continue
        else:  # supplier:<code> (suppliers have no address yet) or something unknown
            found.unresolved.append(token)
            continue
        listed = list(users)
        if not listed:
            found.unresolved.append(token)
        for user in listed:
            found.add(Mailee(user.email or f"user:{user.username}", user.id, user.locale))
    return found


async def webhook_url(session: AsyncSession, recipient: str) -> str | None:
    """Where an outbox row of channel `webhook` goes: a URL, or a customer's webhook URL."""
    if recipient.startswith(("http://", "https://")):
        return recipient
    kind, _, code = recipient.partition(":")
    if kind == "customer":
        url = await session.scalar(select(Customer.webhook_url).where(Customer.code == code))
        return url or None
    return None

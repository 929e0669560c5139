"""The outbox dispatcher: delivers what activities wrote to the outbox, and the webhook
deliveries fanned out from it. It runs as a background task of the worker process (worker.py);
any number of worker replicas may run it, since rows are claimed with FOR UPDATE SKIP LOCKED.

A claim marks a row `sending` and leases it (next_attempt_at = now + lease) in one short
transaction, and counts the attempt; delivery happens outside any transaction; a second
transaction records `sent`/`delivered`, or the error and the next attempt after a backoff, or
`failed` after the last attempt. A process that dies mid-send leaves the lease to expire, and
the row is claimed again: at least once, with a stable Message-ID / event id for receivers to
de-duplicate. Mail into the embedded mailbox is written in the transaction that marks it sent:
exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from erp.db import database_now
from erp.mail_wording import has_wording, without_wording, worded
from erp.models import MailboxMessage, Outbox, WebhookDelivery, WebhookSubscription
from erp.notify import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    envelope,
    event_id,
    event_type,
    expand_recipients,
    sign,
    subscribed,
    webhook_url,
)
from settings import Settings

log = logging.getLogger("lotline.dispatcher")
DUE = ("pending", "sending")


@dataclass(frozen=True)
class RetryRule:
    """Attempt n failing waits first_delay * 2**(n-1), at most max_delay; after max_attempts
    the row is `failed` with its last error."""

    max_attempts: int = 8
    first_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)
    lease: timedelta = timedelta(minutes=5)  # longer than any one delivery may take

    def delay(self, attempts: int) -> timedelta:
        return min(self.first_delay * (2 ** max(attempts - 1, 0)), self.max_delay)


class DeliveryFailed(Exception):
    """A delivery did not happen; `permanent` when trying again cannot help."""

    def __init__(self, message: str, *, permanent: bool = False, status_code: int | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.status_code = status_code


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    sender: str = "lotline@localhost"
    starttls: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        """None when no SMTP host is set: the embedded mailbox then receives the mail."""
        if not settings.smtp_host:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            sender=settings.smtp_from,
            starttls=settings.smtp_starttls,
        )

    def send(self, message: EmailMessage) -> None:
        """Blocking (the standard library's smtplib); the dispatcher calls it in a thread."""
        with smtplib.SMTP(self.host, self.port, timeout=30) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)


@dataclass(frozen=True)
class ClaimedMessage:
    id: int
    channel: str
    recipient: str
    subject: str
    body: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int


@dataclass(frozen=True)
class ClaimedDelivery:
    id: int
    url: str
    secret: str
    event_id: str
    event_type: str
    body: bytes
    attempts: int


class OutboxDispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        smtp: SmtpConfig | None,
        retry: RetryRule | None = None,
        batch: int = 20,
        http_timeout: float = 10.0,
    ) -> None:
        self._sessions = sessions
        self._smtp = smtp
        self._retry = retry or RetryRule()
        self._batch = batch
        self._http_timeout = http_timeout

    async def run(self, stop: asyncio.Event, *, idle_seconds: float = 2.0) -> None:
        """Deliver until `stop` is set; poll every `idle_seconds` while there is nothing due."""
        log.info("outbox dispatcher started (%s)", "SMTP" if self._smtp else "embedded mailbox")
        async with httpx.AsyncClient(timeout=self._http_timeout) as http:
            while not stop.is_set():
                try:
                    handled = await self.dispatch_once(http)
                except Exception:  # the database is away, say: keep going, try again shortly
                    log.exception("outbox dispatch failed; retrying in %.0f s", idle_seconds)
                    handled = 0
                if handled == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), idle_seconds)

    async def dispatch_once(self, http: httpx.AsyncClient | None = None) -> int:
        """One batch of due outbox rows and one of due webhook deliveries; how many were tried."""
        if http is None:
            async with httpx.AsyncClient(timeout=self._http_timeout) as own:
                return await self.dispatch_once(own)
        messages = await self._claim_messages()
        for message in messages:
            await self._deliver_message(message, http)
        deliveries = await self._claim_deliveries()
        for delivery in deliveries:
            await self._deliver_webhook(delivery, http)
        return len(messages) + len(deliveries)

    # --- outbox rows ----------------------------------------------------------------------------

    async def _claim_messages(self) -> list[ClaimedMessage]:
        async with self._sessions() as session, session.begin():
            rows = await session.scalars(
                select(Outbox)
                .where(Outbox.status.in_(DUE), Outbox.next_attempt_at <= func.now())
                .order_by(Outbox.next_attempt_at, Outbox.id)
                .limit(self._batch)
                .with_for_update(skip_locked=True)
            )
            now = await database_now(session)
            claimed = []
            for row in rows.all():
                if row.attempts == 0:
                    await self._fan_out(session, row)
                if row.attempts >= self._retry.max_attempts:  # leased out and never came back
                    row.status = "failed"
                    row.last_error = f"gave up after {row.attempts} attempts; {row.last_error}"
                    continue
                row.status = "sending"
                row.attempts += 1
                row.next_attempt_at = now + self._retry.lease
                claimed.append(
                    ClaimedMessage(
                        row.id,
                        row.channel,
                        row.recipient,
                        row.subject,
                        row.body,
                        dict(row.payload),
                        row.created_at,
                        row.attempts,
                    )
                )
            return claimed

    async def _fan_out(self, session: AsyncSession, row: Outbox) -> None:
        """One delivery per active subscription to the row's event, once per event id."""
        kind = event_type(row.payload)
        if kind is None:
            return
        subscriptions = await session.scalars(
            select(WebhookSubscription).where(
                WebhookSubscription.active.is_(True), WebhookSubscription.deleted_at.is_(None)
            )
        )
        values = [
            {
                "subscription_id": s.id,
                "outbox_id": row.id,
                "event_id": event_id(row, kind),
                "event_type": kind,
            }
            for s in subscriptions
            if subscribed(s.event_types, kind)
        ]
        if values:
            await session.execute(
                insert(WebhookDelivery)
                .values(values)
                .on_conflict_do_nothing(constraint="uq_webhook_delivery_subscription_event")
            )

    async def _deliver_message(self, message: ClaimedMessage, http: httpx.AsyncClient) -> None:
        try:
            if message.channel == "email" and self._smtp is None:
                await self._into_mailbox(message)  # marks the row sent in the same transaction
                return
            if message.channel == "email":
                await self._send_mail(message)
            elif message.channel == "webhook":
                await self._post_direct(message, http)
            else:
                raise DeliveryFailed(f"unknown channel {message.channel!r}", permanent=True)
        except DeliveryFailed as err:
            await self._message_failed(message, str(err), permanent=err.permanent)
            return
        except Exception as err:  # a fault of ours: recorded, retried, never lost
            log.exception("delivering outbox row %s failed", message.id)
            await self._message_failed(message, f"{type(err).__name__}: {err}", permanent=False)
            return
        async with self._sessions() as session, session.begin():
            row = await session.get_one(Outbox, message.id, with_for_update=True)
            row.status, row.sent_at, row.last_error = "sent", func.now(), ""

    async def _into_mailbox(self, message: ClaimedMessage) -> None:
        async with self._sessions() as session, session.begin():
            recipients = await expand_recipients(session, message.recipient)
            values = []
            for m in recipients.people:  # each person in their own language, when worded
                subject, body = worded(message.payload, m.locale, message.subject, message.body)
                values.append(
                    {
                        "outbox_id": message.id,
                        "user_id": m.user_id,
                        "address": m.address,
                        "subject": subject,
                        "body": body,
                    }
                )
            # the mailbox shows what SMTP could not send too (an admin sees supplier:ACME)
            values += [
                {
                    "outbox_id": message.id,
                    "user_id": None,
                    "address": token[:200],
                    "subject": message.subject,
                    "body": message.body,
                }
                for token in recipients.unresolved
            ]
            if values:
                await session.execute(
                    insert(MailboxMessage)
                    .values(values)
                    .on_conflict_do_nothing(constraint="uq_mailbox_message_outbox_address")
                )
            row = await session.get_one(Outbox, message.id, with_for_update=True)
            row.status, row.sent_at = "sent", func.now()
            row.last_error = _unresolved_note(recipients.unresolved)

    async def _send_mail(self, message: ClaimedMessage) -> None:
        assert self._smtp is not None
        async with self._sessions() as session:
            recipients = await expand_recipients(session, message.recipient)
        people = [m for m in recipients.people if "@" in m.address]
        if not people:
            raise DeliveryFailed(
                f"no e-mail address for {message.recipient}; give the people an e-mail address "
                "(or the customer one) and set the row back to pending",
                permanent=True,
            )
        # one message per language of the recipients when the row is worded; a retry sends
        # every language again, each with its stable Message-ID for receivers to de-duplicate
        groups: dict[str, list[str]] = {}
        for m in people:
            groups.setdefault(m.locale if has_wording(message.payload) else "", []).append(
                m.address
            )
        try:
            for locale, addresses in groups.items():
                subject, body = worded(message.payload, locale, message.subject, message.body)
                mail = EmailMessage()
                mail["From"] = self._smtp.sender
                mail["To"] = ", ".join(addresses)
                mail["Subject"] = subject
                mail["Date"] = formatdate(usegmt=True)
                # the same on every attempt: per row, and per language of a worded row
                suffix = f"-{locale}" if locale else ""
                mail["Message-ID"] = f"<outbox-{message.id}{suffix}@lotline>"
                mail.set_content(body)  # (clears Content-* headers: the language after it)
                if locale:
                    mail["Content-Language"] = "zh-Hans" if locale == "zh_Hans" else "en"
                await asyncio.to_thread(self._smtp.send, mail)
        except smtplib.SMTPRecipientsRefused as err:
            raise DeliveryFailed(f"the SMTP server refused every recipient: {err}") from err
        except (OSError, smtplib.SMTPException) as err:
            raise DeliveryFailed(f"SMTP {self._smtp.host}:{self._smtp.port}: {err}") from err

    async def _post_direct(self, message: ClaimedMessage, http: httpx.AsyncClient) -> None:
        """A row addressed to one system (a customer's webhook URL): unsigned, it has no secret."""
        async with self._sessions() as session:
            url = await webhook_url(session, message.recipient)
        if url is None:
            raise DeliveryFailed(f"no webhook URL for {message.recipient}", permanent=True)
        kind = event_type(message.payload) or "message"
        key = _event_id_of(message, kind)
        body = envelope(
            event=kind,
            event_id_=key,
            created_at=message.created_at,
            data=without_wording(message.payload),
        )
        headers = {EVENT_ID_HEADER: key, EVENT_TYPE_HEADER: kind}
        await _post(http, url, body, headers)

    async def _message_failed(
        self, message: ClaimedMessage, error: str, *, permanent: bool
    ) -> None:
        async with self._sessions() as session, session.begin():
            row = await session.get_one(Outbox, message.id, with_for_update=True)
            row.last_error = error[:2000]
            if permanent or row.attempts >= self._retry.max_attempts:
                row.status = "failed"
                log.warning("outbox row %s failed for good: %s", row.id, error)
            else:
                row.status = "pending"
                row.next_attempt_at = await database_now(session) + self._retry.delay(row.attempts)

    # --- webhook deliveries ---------------------------------------------------------------------

    async def _claim_deliveries(self) -> list[ClaimedDelivery]:
        async with self._sessions() as session, session.begin():
            rows = await session.execute(
                select(WebhookDelivery, WebhookSubscription, Outbox)
                .join(
                    WebhookSubscription,
                    WebhookSubscription.id == WebhookDelivery.subscription_id,
                )
                .join(Outbox, Outbox.id == WebhookDelivery.outbox_id)
                .where(
                    WebhookDelivery.status.in_(DUE), WebhookDelivery.next_attempt_at <= func.now()
                )
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(self._batch)
                .with_for_update(of=WebhookDelivery, skip_locked=True)
            )
            now = await database_now(session)
            claimed = []
            for delivery, subscription, row in rows.tuples():
                if not subscription.active or subscription.deleted_at is not None:
                    delivery.status = "failed"
                    delivery.last_error = "the subscription was deleted or deactivated"
                    continue
                if delivery.attempts >= self._retry.max_attempts:
                    delivery.status = "failed"
                    delivery.last_error = (
                        f"gave up after {delivery.attempts} attempts; {delivery.last_error}"
                    )
                    continue
                delivery.status = "sending"
                delivery.attempts += 1
                delivery.next_attempt_at = now + self._retry.lease
                body = envelope(
                    event=delivery.event_type,
                    event_id_=delivery.event_id,
                    created_at=row.created_at,
                    data=without_wording(dict(row.payload)),
                )
                claimed.append(
                    ClaimedDelivery(
                        delivery.id,
                        subscription.url,
                        subscription.secret,
                        delivery.event_id,
                        delivery.event_type,
                        body,
                        delivery.attempts,
                    )
                )
            return claimed

    async def _deliver_webhook(self, delivery: ClaimedDelivery, http: httpx.AsyncClient) -> None:
        timestamp = int(time.time())
        headers = {
            EVENT_ID_HEADER: delivery.event_id,
            EVENT_TYPE_HEADER: delivery.event_type,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(delivery.secret, timestamp, delivery.body),
            "X-Lotline-Delivery": str(delivery.id),
        }
        error, status_code = "", None
        try:
            status_code = await _post(http, delivery.url, delivery.body, headers)
        except DeliveryFailed as err:
            error, status_code = str(err), err.status_code
        async with self._sessions() as session, session.begin():
            row = await session.get_one(WebhookDelivery, delivery.id, with_for_update=True)
            row.last_status_code = status_code
            if not error:
                row.status, row.delivered_at, row.last_error = "delivered", func.now(), ""
            elif row.attempts >= self._retry.max_attempts:
                row.status, row.last_error = "failed", error[:2000]
            else:
                row.status, row.last_error = "pending", error[:2000]
                row.next_attempt_at = await database_now(session) + self._retry.delay(row.attempts)


async def _post(http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST the JSON body; any 2xx is delivered, anything else is worth another try."""
    try:
        response = await http.post(
            url, content=body, headers={"Content-Type": "application/json", **headers}
        )
    except httpx.HTTPError as err:
        raise DeliveryFailed(f"POST {url}: {type(err).__name__}: {err}") from err
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(
            f"POST {url} answered {response.status_code}: {response.text[:200]}",
            status_code=response.status_code,
        )
    return response.status_code


def _event_id_of(message: ClaimedMessage, kind: str) -> str:
    row = Outbox(payload=message.payload, created_at=message.created_at)
    return event_id(row, kind)


def _unresolved_note(unresolved: list[str]) -> str:
    return f"no e-mail address for {', '.join(unresolved)}" if unresolved else ""

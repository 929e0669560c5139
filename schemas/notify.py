"""Payloads of notifications: the approver's daily digest, and webhook subscriptions over REST."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class DigestInput(BaseModel):
    process_id: str  # the workflow id, recorded in the audit row
    at: datetime  # the workflow's time: the day of the digest and what counts as overdue


class DigestResult(BaseModel):
    """The day and the people who got a digest for it (a retry returns the same)."""

    on: date
    recipients: list[str] = []


class WebhookIn(BaseModel):
    url: str = Field(min_length=8, max_length=500, description="http:// or https:// URL")
    event_types: list[str] = Field(
        min_length=1, max_length=50, description='event names, or ["*"] for every event'
    )
    description: str = Field(default="", max_length=300)
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="the HMAC-SHA256 key; one is generated when left out",
    )


class WebhookOut(BaseModel):
    id: int
    url: str
    event_types: list[str]
    description: str
    active: bool
    created_by: str
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str  # shown once, at creation


class WebhookDeliveryOut(BaseModel):
    id: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None


class RetriedOut(BaseModel):
    """A failed outbox message or webhook delivery set back to pending."""

    id: int
    status: str
    attempts: int

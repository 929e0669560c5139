"""Lotline settings, read from the environment.

Every setting has an embedded default so `make run` works on a fresh machine; in production the
environment points at a real PostgreSQL and Temporal cluster and nothing embedded starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _check_holidays_country(country: str) -> None:
    from erp.business_calendar import UnknownCountry, check_country

    try:
        check_country(country)
    except UnknownCountry as err:
        raise SystemExit(f"LOTLINE_HOLIDAYS_COUNTRY: {err}") from None


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _default_public_url() -> str:
    host = _env("LOTLINE_HOST", "127.0.0.1") or "127.0.0.1"
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{shown}:{_env('LOTLINE_PORT', '8000') or 8000}"


AUDIT_KEY_ENV = "LOTLINE_AUDIT_KEY"
# Used only when LOTLINE_AUDIT_KEY is unset (tests, a process started by hand): it is in the
# source, so it proves nothing against someone who rewrites the trail; `make run` generates a
# real key into the data directory, and production sets one (docs/architecture.md).
DEVELOPMENT_AUDIT_KEY = "lotline-development-audit-key-not-secret"


def audit_key() -> bytes:
    """The key of the audit trail's MACs. Read from the environment at every use, so the worker,
    the API, the migrations and the verifier all take it from where the deployment puts it."""
    return (_env(AUDIT_KEY_ENV) or DEVELOPMENT_AUDIT_KEY).encode()


def audit_key_is_set() -> bool:
    return _env(AUDIT_KEY_ENV) is not None


@dataclass(frozen=True)
class Settings:
    # None means "start the embedded one" (make run) — the worker and API alone need them set.
    database_url: str | None = None
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    task_queue: str = "lotline"
    data_dir: Path = Path(".lotline")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    session_hours: int = 12
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    signature_max_failures: int = 3
    cookie_secure: bool = False
    # whose public holidays the working-day clocks skip (the recall's 10-working-day report)
    holidays_country: str = "US"
    # notifications (erp/notify.py): no SMTP host means the embedded mailbox (/mailbox)
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "lotline@localhost"
    smtp_starttls: bool = True
    public_url: str = "http://127.0.0.1:8000"  # where the links in mails point
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        settings = cls(
            database_url=_env("DATABASE_URL"),
            temporal_address=_env("TEMPORAL_ADDRESS"),
            temporal_namespace=_env("TEMPORAL_NAMESPACE", "default") or "default",
            task_queue=_env("LOTLINE_TASK_QUEUE", "lotline") or "lotline",
            data_dir=Path(_env("LOTLINE_DATA_DIR", ".lotline") or ".lotline").resolve(),
            api_host=_env("LOTLINE_HOST", "127.0.0.1") or "127.0.0.1",
            api_port=int(_env("LOTLINE_PORT", "8000") or 8000),
            temporal_port=int(_env("LOTLINE_TEMPORAL_PORT", "7233") or 7233),
            temporal_ui_port=int(_env("LOTLINE_TEMPORAL_UI_PORT", "8233") or 8233),
            session_hours=int(_env("LOTLINE_SESSION_HOURS", "12") or 12),
            signature_max_failures=int(_env("LOTLINE_SIGNATURE_MAX_FAILURES", "3") or 3),
            login_max_failures=int(_env("LOTLINE_LOGIN_MAX_FAILURES", "5") or 5),
            cookie_secure=(_env("LOTLINE_COOKIE_SECURE", "0") == "1"),
            holidays_country=_env("LOTLINE_HOLIDAYS_COUNTRY", "US") or "US",
            smtp_host=_env("LOTLINE_SMTP_HOST"),
            smtp_port=int(_env("LOTLINE_SMTP_PORT", "587") or 587),
            smtp_username=_env("LOTLINE_SMTP_USERNAME"),
            smtp_password=_env("LOTLINE_SMTP_PASSWORD"),
            smtp_from=_env("LOTLINE_SMTP_FROM", "lotline@localhost") or "lotline@localhost",
            smtp_starttls=(_env("LOTLINE_SMTP_STARTTLS", "1") != "0"),
            public_url=(_env("LOTLINE_PUBLIC_URL") or _default_public_url()).rstrip("/"),
        )
        _check_holidays_country(settings.holidays_country)
        return settings

    def require_database_url(self) -> str:
        if not self.database_url:
            raise SystemExit(
                "DATABASE_URL is not set. Set it to postgresql+psycopg://user:password@host/db, "
                "or use `make run`, which starts an embedded PostgreSQL."
            )
        return self.database_url

    def require_temporal_address(self) -> str:
        if not self.temporal_address:
            raise SystemExit(
                "TEMPORAL_ADDRESS is not set. Set it to host:port of your Temporal frontend, "
                "or use `make run`, which starts the Temporal dev server."
            )
        return self.temporal_address

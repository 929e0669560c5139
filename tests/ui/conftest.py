"""The whole stack for page tests: the same as tests/api/conftest.py (migrated PostgreSQL with
demo users, a real Temporal dev server, a worker on its own task queue), driven through the pages
the way a browser would: log in with the form, keep the session cookie, post forms with the
CSRF token the page carries."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from html import unescape

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from erp.models import Task
from erp.seed import DEMO_PASSWORD, seed_demo
from settings import Settings
from tests.api.conftest import Stack
from tests.helpers import eventually
from worker import build_worker

BASE_URL = "http://lotline.test"
APPROVAL = {
    "title": "Approve SOP-QA-014 rev D",
    "description": "Incoming inspection sampling per ANSI Z1.4",
    "approver_groups": ["qa"],
    "sla_hours": 48,
}


def hidden_value(html: str, name: str) -> str:
    """The value of a hidden form input, e.g. the CSRF token a page carries."""
    found = re.search(rf'<input type="hidden" name="{re.escape(name)}" value="([^"]*)"', html)
    assert found, f"no hidden input {name!r} on the page"
    return unescape(found.group(1))


def text_of(html: str) -> str:
    """The page's visible text, tags dropped and whitespace collapsed: what a reader sees."""
    without_head = re.sub(r"<head>.*?</head>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", without_head)).split())


class Page:
    """One person's browser: its own cookie jar, logging in through the login form."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.csrf = ""

    async def login(
        self, username: str, password: str = DEMO_PASSWORD, next: str = "/"
    ) -> httpx.Response:
        form = await self.http.get("/login", params={"next": next})
        assert form.status_code == 200, form.text
        assert self.http.cookies.get("lotline_login_csrf"), "GET /login sets no CSRF cookie"
        response = await self.http.post(
            "/login",
            data={
                "username": username,
                "password": password,
                "csrf_token": hidden_value(form.text, "csrf_token"),
                "next": hidden_value(form.text, "next"),
            },
        )
        if response.status_code == 303:
            landing = await self.http.get(response.headers["location"])
            assert landing.status_code == 200, landing.text
            self.csrf = hidden_value(landing.text, "csrf_token")
        return response

    async def get(self, url: str, **kw: object) -> httpx.Response:
        return await self.http.get(url, **kw)  # type: ignore[arg-type]

    async def post(
        self, url: str, data: Mapping[str, object] | None = None, *, csrf: str | None = None
    ) -> httpx.Response:
        """Post a form as the page would, with this session's CSRF token unless told otherwise."""
        body = dict(data or {})
        token = self.csrf if csrf is None else csrf
        if token:
            body["csrf_token"] = token
        return await self.http.post(url, data=body)


@dataclass
class Site:
    app: FastAPI
    api: Stack
    sessions: async_sessionmaker[AsyncSession]
    _exit: AsyncExitStack
    pages: list[Page] = field(default_factory=list)

    async def browser(self) -> Page:
        """A fresh browser (empty cookie jar) on the app."""
        http = await self._exit.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.app, raise_app_exceptions=False),
                base_url=BASE_URL,
            )
        )
        page = Page(http)
        self.pages.append(page)
        return page

    async def as_user(self, username: str) -> Page:
        page = await self.browser()
        response = await page.login(username)
        assert response.status_code == 303, response.text
        return page

    async def start_approval(self, initiator: str = "alice", **changes: object) -> str:
        response = await self.api.http.post(
            "/api/v1/processes/approval",
            json=APPROVAL | changes,
            headers=await self.api.token(initiator),
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    async def open_task(self, process_id: str) -> Task:
        async def probe() -> Task | None:
            async with self.sessions() as session:
                return await session.scalar(
                    select(Task).where(Task.process_id == process_id, Task.status == "open")
                )

        return await eventually(probe, what=f"the open task of {process_id}")

    async def task(self, task_id: int) -> Task:
        async with self.sessions() as session:
            row = await session.get(Task, task_id)
            assert row is not None
            return row


@pytest.fixture
async def site(database_url, sessions, dev_env, task_queue) -> AsyncIterator[Site]:
    await seed_demo(sessions)
    settings = Settings(database_url=database_url, task_queue=task_queue, login_max_failures=5)
    app = create_app(settings, temporal_client=dev_env.client)
    async with (
        build_worker(dev_env.client, task_queue, sessions),
        app.router.lifespan_context(app),
        AsyncExitStack() as exit_stack,
    ):
        api_http = await exit_stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                base_url=BASE_URL,
            )
        )
        api = Stack(
            http=api_http, sessions=sessions, temporal=dev_env.client, task_queue=task_queue
        )
        yield Site(app=app, api=api, sessions=sessions, _exit=exit_stack)

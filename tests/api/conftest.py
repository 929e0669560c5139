"""The whole stack for API tests: migrated PostgreSQL with demo users, a real Temporal dev
server, a worker on its own task queue, and the app driven over HTTP in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.app import create_app
from erp.seed import DEMO_API_KEY, DEMO_PASSWORD, seed_demo
from settings import Settings
from worker import build_worker


@dataclass
class Stack:
    http: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]
    temporal: Client
    task_queue: str

    async def token(self, username: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
        response = await self.http.post(
            "/api/v1/auth/token", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    @property
    def mes(self) -> dict[str, str]:
        return {"X-API-Key": DEMO_API_KEY}


@pytest.fixture
async def stack(database_url, sessions, dev_env, task_queue) -> AsyncIterator[Stack]:
    await seed_demo(sessions)
    settings = Settings(database_url=database_url, task_queue=task_queue, login_max_failures=5)
    app = create_app(settings, temporal_client=dev_env.client)
    async with (
        build_worker(dev_env.client, task_queue, sessions),
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://lotline.test",
        ) as http,
    ):
        yield Stack(http=http, sessions=sessions, temporal=dev_env.client, task_queue=task_queue)

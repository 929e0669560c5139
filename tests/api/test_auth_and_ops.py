"""Logins, tokens, keys, health, readiness, metrics and error shapes."""

from __future__ import annotations

from sqlalchemy import select

from erp.models import AuditEntry
from erp.seed import DEMO_PASSWORD


async def test_login_failures_lock_the_account_and_are_audited(stack):
    for _ in range(5):
        wrong = await stack.http.post(
            "/api/v1/auth/token", json={"username": "frank", "password": "nope"}
        )
        assert wrong.status_code == 401 and wrong.json() == {
            "detail": "Wrong username or password."
        }
    locked = await stack.http.post(
        "/api/v1/auth/token", json={"username": "frank", "password": DEMO_PASSWORD}
    )
    assert locked.status_code == 403 and "locked" in locked.json()["detail"]
    unknown = await stack.http.post(
        "/api/v1/auth/token", json={"username": "nobody", "password": "x"}
    )
    assert unknown.status_code == 401 and unknown.json() == wrong.json()  # no user enumeration
    async with stack.sessions() as session:
        rows = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.entity_type == "user").order_by(AuditEntry.id)
            )
        ).all()
    assert [r.action for r in rows] == ["login.failed"] * 5 + ["login.refused", "login.failed"]
    assert "locked" in rows[4].reason
    assert all("nope" not in (r.reason + str(r.after)) for r in rows)  # no password in the trail


async def test_token_logout_revokes_it(stack):
    headers = await stack.token("bob")
    assert (await stack.http.get("/api/v1/me", headers=headers)).json()["username"] == "bob"
    assert (await stack.http.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    assert (await stack.http.get("/api/v1/me", headers=headers)).status_code == 401


async def test_responses_never_carry_secrets(stack):
    headers = await stack.token("admin")
    me = await stack.http.get("/api/v1/me", headers=headers)
    audit = await stack.http.get("/api/v1/audit", headers=await stack.token("carol"))
    for response in (me, audit):
        assert "argon2" not in response.text and DEMO_PASSWORD not in response.text


async def test_health_readiness_and_metrics(stack):
    assert (await stack.http.get("/healthz")).json() == {"status": "ok"}
    ready = await stack.http.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {
        "ready": True,
        "database": "ok",
        "temporal": "ok",
    }
    assert (await stack.http.get("/metrics", headers=await stack.token("bob"))).status_code == 403
    metrics = await stack.http.get("/metrics", headers=await stack.token("admin"))
    assert metrics.status_code == 200
    assert "lotline_open_tasks" in metrics.text and "lotline_http_requests_total" in metrics.text


async def test_errors_are_json_with_a_message(stack):
    headers = await stack.token("bob")
    missing = await stack.http.get("/api/v1/nothing-here", headers=headers)
    assert missing.status_code == 404 and "no such address" in missing.json()["detail"]
    wrong_method = await stack.http.put("/api/v1/tasks", headers=headers)
    assert wrong_method.status_code == 405 and "PUT is not allowed" in wrong_method.json()["detail"]
    bad_type = await stack.http.get("/api/v1/tasks/abc", headers=headers)
    assert bad_type.status_code == 422 and "task_id" in bad_type.json()["detail"]
    too_big = await stack.http.post(
        "/api/v1/processes/approval",
        content=b"x" * 1_100_000,
        headers=headers | {"Content-Type": "application/json"},
    )
    assert too_big.status_code == 413
    openapi = await stack.http.get("/openapi.json")
    assert (
        openapi.status_code == 200 and "/api/v1/tasks/{task_id}/decision" in openapi.json()["paths"]
    )


async def test_readiness_names_temporal_when_it_is_down(database_url, sessions):
    import httpx
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    from api.app import create_app
    from settings import Settings

    unreachable = await Client.connect(
        "127.0.0.1:1", data_converter=pydantic_data_converter, lazy=True
    )
    app = create_app(Settings(database_url=database_url), temporal_client=unreachable)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["database"] == "ok" and ready.json()["temporal"].startswith("down")
    assert ready.json()["detail"].startswith("not ready: temporal down")


async def test_api_docs_work_without_internet(stack):
    page = await stack.http.get("/docs")
    assert page.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    assert "script-src 'self' 'unsafe-inline'" in page.headers["content-security-policy"]
    asset = await stack.http.get("/docs-assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and "SwaggerUIBundle" in asset.text
    other = await stack.http.get("/login")
    assert "unsafe-inline" not in other.headers["content-security-policy"]

"""The audit trail's recorded actions read in the page's language, the recorded value beside.

The scan and the labels need no servers; the page check has a person who reads Chinese open the
audit page."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import update

from erp.models import AppUser
from tests.ui.conftest import Site, text_of
from ui import values
from ui.audit_actions import AUDIT_ACTION_LABELS, RECORDED_ACTIONS

ROOT = Path(__file__).resolve().parents[2]
# an action written as a literal: audit(..., action="task.decided") or a "lot.held" in a table
WRITTEN = re.compile(r"""action=\(?\s*"([a-z_]+\.[a-z_]+)"|"((?:login|lot|user)\.[a-z_]+)"[,}]""")


def test_every_action_the_code_writes_has_a_label() -> None:
    written = {
        action
        for folder in ("activities", "api", "erp", "ui")
        for path in (ROOT / folder).rglob("*.py")
        for match in WRITTEN.finditer(path.read_text(encoding="utf-8"))
        for action in match.groups()
        if action and not action.endswith(".html")
    }
    assert {"task.decided", "login.succeeded", "lot.held"} <= written  # the scan finds them
    missing = sorted(written - set(RECORDED_ACTIONS))
    assert not missing, f"add them to ui/audit_actions.py and messages.po: {missing}"


def test_an_action_reads_in_chinese_and_as_the_timelines_show_it_in_english() -> None:
    assert AUDIT_ACTION_LABELS["task.decided"] == "decided"
    assert AUDIT_ACTION_LABELS["process.started"] == "process started"
    assert values.stored("audit action", "task.decided", "en") == "decided"
    assert values.stored("audit action", "task.decided", "zh_Hans") == "任务已决定"
    assert values.stored("audit action", "lot.held", "zh_Hans") == "批次已暂扣"


async def test_the_audit_page_shows_actions_in_chinese_with_the_recorded_value(
    site: Site,
) -> None:
    english = await site.as_user("carol")
    rows = (await english.get("/audit")).text.split("<tbody>")[1]
    assert "<code>login.succeeded</code>" in rows and "登录成功" not in rows

    async with site.sessions() as session, session.begin():
        await session.execute(
            update(AppUser).where(AppUser.username == "carol").values(locale="zh_Hans")
        )
    chinese = await site.as_user("carol")
    page = await chinese.get("/audit")
    assert page.status_code == 200
    rows = page.text.split("<tbody>")[1]
    assert "<code>login.succeeded</code>" in rows  # an auditor still reads what was recorded
    assert "登录成功" in text_of(rows)

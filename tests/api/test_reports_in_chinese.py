"""A CAPA report in Simplified Chinese over REST, on the real stack: its statuses, kinds and
timeline actions print as their label with the recorded value beside it; in English as
recorded (tests/api/test_reports.py)."""

from __future__ import annotations

from sqlalchemy import update

from erp.audit import AuditRecord, append_audit
from erp.models import AppUser
from tests.api.test_quality_api import write_quality_story
from tests.api.test_reports import both, section
from ui.i18n import translate

ZH = "zh_Hans"


async def test_a_capa_report_in_chinese_shows_labels_beside_the_recorded_values(stack):
    await write_quality_story(stack.sessions)
    async with stack.sessions() as session, session.begin():
        await session.execute(update(AppUser).where(AppUser.username == "dave").values(locale=ZH))
        for action in ("capa.opened", "capa.planning"):  # the timeline the workflow would write
            await append_audit(
                session,
                AuditRecord(
                    actor="system",
                    action=action,
                    entity_type="capa",
                    entity_id="CAPA-2026-9001",
                    workflow_id="capa-qs-0001",
                    source="worker",
                ),
            )
    dave = await stack.token("dave")
    _header, rows, _digest, _printed, _pdf = await both(
        stack, "/api/v1/reports/capa/CAPA-2026-9001", dave, ZH
    )
    facts = dict(section(rows, translate(ZH, "CAPA")))
    assert facts[translate(ZH, "Status")] == "措施实施 (actions)"
    first_round = section(rows, translate(ZH, "Plan round %(n)s", n=1))
    assert dict(first_round[:5])[translate(ZH, "Effectiveness")] == "无效 (not_effective)"
    timeline = section(rows, translate(ZH, "Timeline (audit trail)"))
    actions = [r[3] for r in timeline[1:]]
    # the label, and what was recorded
    assert actions == ["CAPA 已开立 (capa.opened)", "CAPA 状态：制定计划 (capa.planning)"]

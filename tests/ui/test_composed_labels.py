"""Field labels and context keys a workflow composes with values (`label=said("Lot %(lot)s
(%(what)s)", …)`, `{said("Line %(n)s", n=1): …}`) read in the person's language on the real task
page (`ui/label_text.py`, `ui/locales/zh_Hans/labels.po`); the English is byte-identical to what
the f-strings wrote, and a task opened before (no wording) reads as it did."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from starlette.requests import Request

from api.security import Principal
from schemas.api import TaskDetail
from schemas.human_task import (
    Candidates,
    DecisionRequest,
    FieldSpec,
    FieldType,
    OutcomeSpec,
    TaskSpec,
)
from schemas.nonconformance import LotSummary
from schemas.production import LotPick
from schemas.quality import ActionKind, PlannedAction
from ui import i18n
from ui.pages import templates
from workflows.capa import Plan, _plan_context
from workflows.change_control import FUNCTION_LABELS
from workflows.human_task import _malformed_fields
from workflows.nonconformance import _lots_context
from workflows.process_kit import picks_context
from workflows.wording import said

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 3, 14, 5, tzinfo=UTC)


def _spec(fields: list[FieldSpec], context: dict[str, str], **more: Any) -> TaskSpec:
    spec = TaskSpec.model_validate(
        {
            "step": "review-1",
            "kind": "review",
            "process_kind": "nonconformance",
            "process_id": "nonconformance-NC-1",
            "business_key": "NC-1",
            "title": "Review NC-1",
            "candidates": Candidates(groups=["qa"]),
            "outcomes": [OutcomeSpec(name="done", label="Done")],
            "fields": fields,
            "context": context,
            **more,
        }
    )
    return TaskSpec.model_validate_json(spec.model_dump_json())  # as stored and read back


def _page(spec: TaskSpec, locale: str, *, open_form: bool = True) -> str:
    """The real task page for `spec`, as ui.routes._task_page renders it."""
    stored = spec.model_dump(mode="json")
    task = TaskDetail(
        id=7,
        title=spec.title,
        description=spec.description,
        kind=spec.kind,
        process_id=spec.process_id,
        process_kind=spec.process_kind,
        business_key=spec.business_key,
        step=spec.step,
        status="open" if open_form else "completed",
        outcome=None if open_form else "done",
        rule="any",
        k=1,
        stage=1,
        stage_count=1,
        level=1,
        due_at=NOW,
        overdue=False,
        candidate_groups=["qa"],
        candidate_users=[],
        initiator=None,
        claimed_by=None,
        created_at=NOW,
        closed_at=None if open_form else NOW,
        outcomes=stored["outcomes"],
        fields=stored["fields"],
        context=stored["context"],
        context_wording=stored["context_wording"],
        decisions=[],
        history=[],
    )
    user = Principal(1, "alice", "Alice Li", frozenset({"qa"}), "session", locale=locale)
    request = Request({"type": "http", "method": "GET", "path": "/tasks/7", "headers": []})
    return templates.env.get_template("task.html").render(
        request=request,
        user=user,
        now=NOW,
        locale=locale,
        _=i18n.gettext_for(locale),
        pgettext=i18n.pgettext_for(locale),
        task=task,
        may_decide=True,
        why_not=None,
        on_behalf_of=None,
        signing_outcomes=[],
        outcome_labels={o["name"]: o["label"] for o in stored["outcomes"]},
        field_labels={f["name"]: f["label"] for f in stored["fields"]},
        error="",
        notice="",
        form={},
    )


def _shows(page: str, *texts: str) -> None:
    missing = [t for t in texts if t not in page]
    assert not missing, f"not on the page: {missing}"


def test_composed_field_labels_read_in_chinese() -> None:
    """capa's wait field, the change's assessment fields, an NC's lot choice."""
    lot = LotSummary(
        lot_number="L-1", part_number="TB-0150", quantity=Decimal(400), uom="m", status="ON_HOLD"
    )
    fields = [
        FieldSpec(  # workflows/capa.py, the action plan
            name="effectiveness_wait_days",
            label=said("Days to wait before the effectiveness check (blank: %(days)s)", days=90),
            type=FieldType.NUMBER,
        ),
        *[  # workflows/change_control.py, triage
            FieldSpec(
                name=f"assess_{f}",
                label=said("%(function)s assessment required", function=FUNCTION_LABELS[f]),
                type=FieldType.CHOICE,
                choices=["yes", "no"],
            )
            for f in ("ra", "supply_chain")
        ],
        FieldSpec(  # workflows/nonconformance.py, the MRB's disposition
            name="lot_1",
            label=said("Lot %(lot)s (%(what)s)", lot=lot.lot_number, what=lot.describe()),
            type=FieldType.CHOICE,
            choices=["scrap", "rework", "use_as_is", "return_to_supplier"],
        ),
    ]
    spec = _spec(fields, {})
    assert [f.label for f in spec.fields] == [
        "Days to wait before the effectiveness check (blank: 90)",
        "Regulatory (RA) assessment required",
        "Supply chain assessment required",
        "Lot L-1 (TB-0150, 400 m, ON_HOLD)",
    ]
    chinese = _page(spec, "zh_Hans")
    _shows(
        chinese,
        "有效性检查前的等待天数（留空则为 90 天）",
        "需要法规事务（RA）评估",
        "需要供应链评估",
        "批次 L-1（TB-0150, 400 m, ON_HOLD）",
    )
    assert "assessment required" not in chinese and "Days to wait" not in chinese
    _shows(_page(spec, "en"), *(f.label for f in spec.fields))


def test_numbered_context_keys_read_in_chinese() -> None:
    """Action n, Pick n (part), Line n, Short n, Shipped n, Disposition L-…, Lot L-…, a change's
    impact lines: the real helpers where a workflow has one, else its said(…) as written."""
    plan = Plan(
        round=1,
        actions=[
            PlannedAction(
                kind=ActionKind.CORRECTIVE,
                description="retrain the line",
                owner="bob",
                due_on=date(2027, 1, 15),
            )
        ],
        wait_days=90,
        author="alice",
    )
    pick = LotPick(part_number="TB-0150", lot_id=3, lot_number="L-3", quantity=Decimal(5))
    lot = LotSummary(
        lot_number="L-9", part_number="TB-0150", quantity=Decimal(1), uom="ea", status="ON_HOLD"
    )
    context = (
        _plan_context(plan)  # workflows/capa.py
        | picks_context([pick])  # workflows/process_kit.py (shipment, work order)
        | _lots_context([lot])  # workflows/nonconformance.py
        | {
            said("Line %(n)s", n=1): "5 × TB-0150",  # workflows/shipment.py
            said("Short %(n)s", n=1): "TB-0150 needs 5 ea, 0 available",
            said("Shipped %(n)s", n=2): "TB-0150: 5 of lot L-3",
            said("Disposition %(lot)s", lot="L-4"): "Scrap",  # workflows/nonconformance.py
            # workflows/change_control.py, an impact line of the assessment
            said("%(category)s %(n)s", category="open po", n=1): "PO-1 — 50 TB-0150",
            said("%(category)s %(n)s", category="work order", n=2): "WO-2 — released",
            "Impact": "1 open po",  # a constant key, looked up as before
        }
    )
    spec = _spec([], context)
    assert list(spec.context) == [
        "Action 1",
        "Effectiveness check after",
        "Pick 1 (TB-0150)",
        "Lot L-9",
        "Line 1",
        "Short 1",
        "Shipped 2",
        "Disposition L-4",
        "open po 1",
        "work order 2",
        "Impact",
    ]
    chinese = _page(spec, "zh_Hans")
    _shows(
        chinese,
        "<dt>操作 1</dt>",
        "<dt>实施后多久进行有效性检查</dt>",
        "<dt>拣货 1（TB-0150）</dt>",
        "<dt>批次 L-9</dt>",
        "<dt>第 1 行</dt>",
        "<dt>短缺 1</dt>",
        "<dt>发货明细 2</dt>",
        "<dt>批次 L-4 的处置</dt>",
        "<dt>未结采购订单 1</dt>",
        "<dt>工单 2</dt>",
        "<dt>影响</dt>",
    )
    english = _page(spec, "en")
    _shows(english, *(f"<dt>{k}</dt>" for k in spec.context))


def test_a_task_opened_before_reads_as_it_did() -> None:
    """No wording (a spec stored before): the labels and keys as they were written, looked up
    as they are; a numbered field name (`lot_1`, shown at its field while the form is) reads
    as its word and number, `Lot 1`, `批次 1`."""
    spec = _spec(
        [FieldSpec(name="lot_1", label="Lot L-1 (TB-0150, 400 m, ON_HOLD)", type=FieldType.TEXT)],
        {"Action 1": "x", "Line 1": "y", "lot_1": "L-1: TB-0150"},
    )
    assert not spec.context_wording and spec.fields[0].label_wording is None
    chinese = _page(spec, "zh_Hans", open_form=False)
    _shows(chinese, "<dt>Line 1</dt>", "<dt>批次 1</dt>", "<dt>Action 1</dt>")
    _shows(_page(spec, "en", open_form=False), "<dt>Lot 1</dt>")
    _shows(_page(spec, "zh_Hans"), "Lot L-1 (TB-0150, 400 m, ON_HOLD)")
    # a wording that does not give back the English label is not used
    stale = _spec(
        [
            FieldSpec(
                name="note",
                label="Note",
                label_wording={"template": "Lot %(lot)s", "values": {"lot": "L-2"}},
            )
        ],
        {},
    )
    assert "批次 L-2" not in _page(stale, "zh_Hans")


def test_a_key_that_quotes_a_refusal_keeps_both_wordings() -> None:
    """A composed key whose value has a wording too (a quoted refusal): both read in Chinese."""
    refused = said("shipment %(number)s is %(status)s", number="S-1", status="cancelled")
    spec = _spec(
        [],
        {said("Short %(n)s", n=1): refused},
        context_wording={"Short 1": {"template": refused.template, "values": refused.values}},
    )
    chinese = _page(spec, "zh_Hans", open_form=False)
    _shows(chinese, "<dt>短缺 1</dt><dd>发货 S-1 的状态为“已取消”</dd>")


def test_a_field_problem_names_the_composed_label_in_chinese() -> None:
    """The human task's refusal of a value that does not fit (workflows/human_task.py) names the
    field by its label, translated with it."""
    spec = _spec(
        [
            FieldSpec(
                name="effectiveness_wait_days",
                label=said(
                    "Days to wait before the effectiveness check (blank: %(days)s)", days=30
                ),
                type=FieldType.NUMBER,
            )
        ],
        {},
    )
    request = DecisionRequest(
        task_id=7,
        decider="alice",
        decider_name="Alice Li",
        outcome="done",
        fields={"effectiveness_wait_days": "soon"},
    )
    problem = _malformed_fields(spec, request.fields)
    assert problem == (
        "Days to wait before the effectiveness check (blank: 30): 'soon' is not a number"
    )
    chinese = i18n.translate_message("zh_Hans", problem)
    assert chinese.startswith("有效性检查前的等待天数（留空则为 30 天）"), chinese


def _composed(node: ast.expr) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod)
    )


def composed_labels_and_keys(source: str) -> list[str]:
    """The `label=`/`*_label=` arguments and dict keys of a module composed with an f-string
    (or `+`/`%`); a key whose text parts are an identifier's (`f"lot_{n}"`) is a field's name."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            found += [
                f"{node.lineno} {k.arg}={ast.unparse(k.value)}"
                for k in node.keywords
                if (k.arg == "label" or str(k.arg).endswith("_label")) and _composed(k.value)
            ]
        keys: list[ast.expr | None] = []
        if isinstance(node, ast.Dict):
            keys = list(node.keys)
        elif isinstance(node, ast.DictComp):
            keys = [node.key]
        elif isinstance(node, ast.Assign):
            keys = [t.slice for t in node.targets if isinstance(t, ast.Subscript)]
        for key in keys:
            if isinstance(key, ast.JoinedStr):
                text = "".join(
                    str(part.value) for part in key.values if isinstance(part, ast.Constant)
                )
                if not all(c.islower() or c in "_-.:" for c in text):
                    found.append(f"{key.lineno} key {ast.unparse(key)}")
    return found


def test_no_workflow_composes_a_label_or_context_key_with_an_f_string() -> None:
    """A label or key composed with values is a `said(…)` (so the catalog has it); a key built
    with an f-string may only be a field's name (`lot_{n}`, an identifier, not a text)."""
    sample = (
        'FieldSpec(name="a", label=f"Lot {n} ({what})")\n'
        'FieldSpec(name="b", label="Days " + str(n))\n'
        'context = {f"Line {n}": v for n, v in lines}\n'
        'shown[f"Lot {number}"] = line\n'
        'fine = {f"lot_{n}": v, said("Line %(n)s", n=1): v, "Impact": v}\n'
    )
    caught = composed_labels_and_keys(sample)
    assert sorted(int(f.split(" ")[0]) for f in caught) == [1, 2, 3, 4], caught
    found = [
        f"{path.name}:{problem}"
        for path in sorted((ROOT / "workflows").glob("*.py"))
        for problem in composed_labels_and_keys(path.read_text(encoding="utf-8"))
    ]
    assert not found, f"compose these with said(…): {found}"

"""Every string a person reads is translated: template text outside `_()` fails, so does a msgid
(templates and Python) without a Simplified Chinese msgstr, or a msgstr whose placeholders differ.
The scans need no servers; the last test, on the whole stack, has a person choose Chinese."""

from __future__ import annotations

import ast
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from jinja2 import nodes
from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy import select

from api.errors import Message, not_found
from api.workflow_updates import refusal_message
from erp import lots
from erp.models import AuditEntry, Process
from schemas.api import DecisionOutcome
from schemas.change_control import ProposedAction
from schemas.human_task import Candidates, OutcomeSpec, TaskSpec
from tests.api.test_change_control_api import CHANGE
from tests.api.test_supply_api import SHIPMENT
from tests.helpers import eventually
from tests.ui.conftest import Site, text_of
from ui import form_problems, i18n, values
from ui.pages import context_label, templates
from workflows.process_kit import again_or_cancel
from workflows.recall import _choice
from workflows.wording import answered, refuse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted((ROOT / "ui" / "templates").glob("*.html"))
# Python whose texts reach a person: the pages' modules, the API's refusals, the workflows' labels,
# the activities' refusals, erp's lot lookups
PYTHON = sorted(
    [
        *(ROOT / "ui").glob("*.py"),
        *(ROOT / "api").rglob("*.py"),
        *(ROOT / "workflows").glob("*.py"),
        *(ROOT / "activities").glob("*.py"),
        ROOT / "erp" / "trace.py",  # the lot lookups the trace pages and lot answers show
        ROOT / "erp" / "gs1.py",
        ROOT / "erp" / "changes.py",  # what a change can no longer apply (ApplyRefused)
        ROOT / "erp" / "lots.py",
        *(ROOT / "schemas").glob("*.py"),  # our validators' `said` problems
    ]
)
ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "label"}
LETTER = re.compile(r"[^\W\d_]")
NOT_TRANSLATED = {"Lotline", "PDF", "CSV"}  # a name that reads the same in every language
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
# 'yes', 'board-silent', 'zh-Hans': a value for the code (an attribute, a class), not for a reader
CODE = re.compile(r"^[a-z][A-Za-z0-9_-]*$")
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdr]")


def readable(text: str) -> bool:
    words = re.sub(r"[\W\d_]+", " ", text).split()
    return any(LETTER.search(word) and word not in NOT_TRANSLATED for word in words)


class _TextFinder(HTMLParser):
    """Text nodes and the attributes a person reads, in a template with its Jinja taken out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._raw = 0  # inside <script>/<style>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._raw += 1
        kind = dict(attrs).get("type")
        for name, value in attrs:
            shown = name in ATTRIBUTES or (
                name == "value" and tag in ("input", "button") and kind in ("submit", "button")
            )
            if shown and value and readable(value):
                self.found.append(f'{name}="{value.strip()}"')

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._raw -= 1

    def handle_data(self, data: str) -> None:
        if not self._raw and readable(data):
            self.found.append(data.strip())


def untranslated_markup(source: str) -> list[str]:
    """Text and readable attributes written outside `{{ _(…) }}`."""
    finder = _TextFinder()
    finder.feed(JINJA.sub(" ", source))
    finder.close()
    return finder.found


def untranslated_literals(source: str) -> list[str]:
    """String constants a template prints as they are ({{ 'Any status' if … }})."""
    found: list[str] = []

    def printed(node: nodes.Node) -> None:
        if isinstance(node, nodes.Const) and isinstance(node.value, str):
            if readable(node.value) and not CODE.match(node.value):
                found.append(node.value)
        elif isinstance(node, nodes.CondExpr):
            printed(node.expr1)
            if node.expr2 is not None:
                printed(node.expr2)
        elif isinstance(node, nodes.Concat):
            for part in node.nodes:
                printed(part)
        elif isinstance(node, nodes.Filter) and node.node is not None:
            printed(node.node)

    tree = templates.env.parse(source)
    for output in tree.find_all(nodes.Output):
        for child in output.nodes:
            if not isinstance(child, nodes.TemplateData):
                printed(child)
    # the labels of a loop over (value, label) pairs: {% for v, label in [('open', 'Open')] %}
    for loop in tree.find_all(nodes.For):
        for pair in loop.iter.find_all(nodes.Tuple):
            for label in pair.items[1:]:
                printed(label)
    return found


def template_msgids(source: str) -> set[str]:
    ids = set()
    for call in templates.env.parse(source).find_all(nodes.Call):
        name = call.node.name if isinstance(call.node, nodes.Name) else ""
        texts = [arg.value for arg in call.args if isinstance(arg, nodes.Const)]
        if name == "_" and call.args and texts and isinstance(call.args[0], nodes.Const):
            ids.add(texts[0])
        elif name == "pgettext" and len(texts) >= 2:  # pgettext("verb", "Open")
            ids.add(i18n.keyed(texts[0], texts[1]))
    return ids


LABEL_TABLE = re.compile(r"^_?[A-Z][A-Z_]*(LABELS|KINDS|SOURCES|CATEGORIES)$")
# the refusals a person reads: the API's and a workflow's (ApplicationError shown on a page)
REFUSALS = {"ApiError": 1, "ApplicationError": 0, "forbidden": 0, "conflict": 0, "not_found": 0}
# what a workflow says through workflows/wording.py: refusals, problems, task titles, descriptions
WORDING = {
    "refuse": 1,
    "Refusal": 1,
    "said": 0,
    "Said": 0,
    "titled": 0,
    "described": 0,
    "answered": 0,
}


# the API's documentation (OpenAPI, Swagger UI) is for developers, in English: its `title=` is not
# a label of ours
FOR_DEVELOPERS = {"FastAPI", "get_swagger_ui_html", "Field", "Query", "Path", "Body", "Header"}


def labelling(name: str | None) -> bool:
    """A parameter or keyword that takes a text a person reads: `label`, `title`, `*_label`."""
    return bool(name) and (name in ("label", "title") or str(name).endswith("_label"))


def label_parameters(tree: ast.AST) -> dict[str, list[int]]:
    """The functions of a module with a labelling parameter (`_choice(name, label, choices)`,
    `again_or_cancel(again, again_label, cancel_label)`): name → the positions of those
    parameters in a call (a method's `self` not counted)."""
    found: dict[str, list[int]] = {}
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        names = [a.arg for a in [*function.args.posonlyargs, *function.args.args]]
        if names[:1] in (["self"], ["cls"]):
            names = names[1:]
        positions = [n for n, name in enumerate(names) if labelling(name)]
        if positions:
            found[function.name] = positions
    return found


def _called(call: ast.Call) -> str:
    return getattr(call.func, "id", None) or getattr(call.func, "attr", None) or ""


def _named(node: ast.expr) -> str:
    """`notes` or `self._classification` → the name a module keeps a context dict under."""
    return getattr(node, "id", None) or getattr(node, "attr", None) or ""


def context_keys(tree: ast.AST) -> set[str]:
    """The literal keys of a task's context as the task page reads them (`k|context_label`,
    translated there): the dicts a workflow passes as `context=` or `about=` (`task_spec`),
    followed through the names, attributes (`self._classification`) and functions
    (`_plan_context(plan)`, `self._about()`) they are built from, and what a `*_context` function
    returns; keys added later (`notes["Rejected"] = …`, `.update({…})`, `|=`) count too. A key
    built with an f-string (`f"Lot {n}"`) is not a catalog text: the page shows it as it is."""
    roots: list[ast.expr] = []
    put: dict[str, list[ast.expr]] = {}  # a name → what is assigned, merged or updated into it
    keys_of: dict[str, list[ast.expr]] = {}  # a name → the keys set on it one by one
    returns: dict[str, list[ast.expr]] = {}  # a function → what it returns
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            roots += [k.value for k in node.keywords if k.arg in ("context", "about")]
            if isinstance(node.func, ast.Attribute) and _called(node) == "update":
                updated = put.setdefault(_named(node.func.value), [])
                updated += node.args
                updated += [ast.Dict([ast.Constant(k.arg)], [k.value]) for k in node.keywords]
            elif isinstance(node.func, ast.Attribute) and _called(node) == "setdefault":
                keys_of.setdefault(_named(node.func.value), []).extend(node.args[:1])
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            returned = [r.value for r in ast.walk(node) if isinstance(r, ast.Return) and r.value]
            returns.setdefault(node.name, []).extend(returned)
            if node.name.endswith("_context"):
                roots += returned
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign) and node.value:
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Subscript):
                    keys_of.setdefault(_named(target.value), []).append(target.slice)
                else:
                    put.setdefault(_named(target), []).append(node.value)

    literal: list[ast.expr] = []
    followed: set[tuple[str, str]] = set()
    todo = list(roots)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if key is None:  # {**more}
                    todo.append(value)
                else:
                    literal.append(key)
        elif isinstance(node, ast.BinOp):  # about | self._classification
            todo += [node.left, node.right]
        elif isinstance(node, ast.BoolOp):  # context or {}
            todo += node.values
        elif isinstance(node, ast.IfExp):  # {"Refused": note} if note else {}
            todo += [node.body, node.orelse]
        elif isinstance(node, ast.Name | ast.Attribute) and ("name", _named(node)) not in followed:
            followed.add(("name", _named(node)))
            todo += put.get(_named(node), [])
            literal += keys_of.get(_named(node), [])
        elif isinstance(node, ast.Call) and _called(node) == "dict":  # dict(other, Key=…)
            todo += node.args
            literal += [ast.Constant(k.arg) for k in node.keywords if k.arg]
        elif isinstance(node, ast.Call) and ("call", _called(node)) not in followed:
            followed.add(("call", _called(node)))
            todo += returns.get(_called(node), [])
    return {
        context_label(key.value)
        for key in literal
        if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value.strip()
    }


def python_msgids(source: str, labels: dict[str, list[int]] | None = None) -> set[str]:
    """translate(locale, "…"), N_("…") and _("…") with a literal text; the English texts of
    ApiError refusals; the values of the label tables (`SEVERITY_LABELS = {…}`); the `label=`,
    `title=` and `*_label=` of a call (a workflow's outcomes and fields) and the defaults of such
    parameters; the texts passed to such a parameter of a helper (`_choice("level", "Level", …)`,
    by `labels`, the helpers of every module: `label_parameters`, this module's own first); the
    keys of a task's context (`context_keys`)."""
    ids: set[str] = set()
    tree = ast.parse(source)
    helpers = (labels or {}) | label_parameters(tree)
    for call in ast.walk(tree):
        if isinstance(call, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            arguments = call.args
            positional = [*arguments.posonlyargs, *arguments.args]
            defaults = zip(
                positional[len(positional) - len(arguments.defaults) :],
                arguments.defaults,
                strict=True,
            )
            pairs = [*defaults, *zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)]
            ids.update(
                default.value
                for argument, default in pairs
                if labelling(argument.arg)
                and isinstance(default, ast.Constant)
                and isinstance(default.value, str)
                and default.value
            )
            continue
        if not isinstance(call, ast.Call):
            continue
        name = _called(call)
        position = {"translate": 1, "N_": 0, "_": 0, "Message": 0, **REFUSALS, **WORDING}.get(name)
        texts = [call.args[position]] if position is not None and len(call.args) > position else []
        texts += [call.args[n] for n in helpers.get(name, []) if n < len(call.args)]
        if name not in FOR_DEVELOPERS:
            texts += [k.value for k in call.keywords if labelling(k.arg)]
        for text in texts:
            if isinstance(text, ast.Constant) and isinstance(text.value, str) and text.value:
                ids.add(text.value)
    ids |= context_keys(tree)
    for statement in tree.body:
        target = getattr(statement, "target", None) or next(
            iter(getattr(statement, "targets", [])), None
        )
        value = getattr(statement, "value", None)
        if (
            isinstance(target, ast.Name)
            and LABEL_TABLE.match(target.id)
            and isinstance(value, ast.Dict)
        ):
            for label in value.values:
                if isinstance(label, ast.Constant) and isinstance(label.value, str):
                    ids.add(label.value)
    return ids


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_every_text_of_a_template_is_wrapped_in_gettext(template: Path) -> None:
    source = template.read_text(encoding="utf-8")
    missing = untranslated_markup(source) + untranslated_literals(source)
    assert not missing, f"{template.name}: wrap these in {{{{ _('…') }}}}: {missing}"


def all_msgids() -> dict[str, set[str]]:
    ids: dict[str, set[str]] = {}
    for path in TEMPLATES:
        for msgid in template_msgids(path.read_text(encoding="utf-8")):
            ids.setdefault(msgid, set()).add(path.name)
    sources = {path: path.read_text(encoding="utf-8") for path in PYTHON}
    helpers: dict[str, list[int]] = {}  # a helper one module defines, another calls
    for source in sources.values():
        helpers |= label_parameters(ast.parse(source))
    for path, source in sources.items():
        for msgid in python_msgids(source, helpers):
            ids.setdefault(msgid, set()).add(path.name)
    # the database triggers' lot refusals, worded by erp.lots.TRIGGER_REFUSALS
    for known in lots.TRIGGER_REFUSALS.values():
        for _pattern, worded in known:
            for template in worded.values():
                ids.setdefault(template, set()).add("lots.py")
    # stored values shown with |stored("context"): each label in its context (ui/values.py)
    for context, table in values.VALUE_LABELS.items():
        for label in table.values():
            ids.setdefault(i18n.keyed(context, label), set()).add("values.py")
    return ids


def test_every_message_has_a_simplified_chinese_translation() -> None:
    chinese = i18n.catalog("zh_Hans")
    missing = {
        msgid: sorted(where) for msgid, where in all_msgids().items() if msgid not in chinese
    }
    assert not missing, f"no zh_Hans msgstr in ui/locales/zh_Hans/*.po for: {missing}"


def test_no_two_catalogs_translate_one_text_two_ways() -> None:
    """All PO files of a locale are merged: a msgid two areas translate differently would show
    one area's meaning on the other's page. Give such a word a msgctxt (pgettext)."""
    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for path in sorted((i18n.LOCALES_DIR / "zh_Hans").glob("*.po")):
        with path.open("rb") as handle:
            for message in read_po(handle, locale="zh"):
                if not (message.id and message.string):
                    continue
                key = i18n.keyed(message.context, str(message.id))
                if key in seen and seen[key][1] != message.string:
                    clashes.append((str(message.id), seen[key], (path.name, message.string)))
                seen[key] = (path.name, str(message.string))
    assert not clashes, f"one msgid, two translations (use pgettext with a context): {clashes}"


def test_translations_keep_the_placeholders() -> None:
    wrong = {
        msgid: text
        for msgid, text in i18n.catalog("zh_Hans").items()
        if sorted(PLACEHOLDER.findall(msgid)) != sorted(PLACEHOLDER.findall(text))
    }
    assert not wrong, f"a translation must use the same %(name)s placeholders: {wrong}"


def test_the_scan_finds_what_it_should() -> None:
    """The checks above are only as good as these: they see bare text, attributes and literals."""
    source = (
        '<p title="Due soon">Open {{ n }} tasks</p><input placeholder="{{ _("Search") }}">'
        "{{ 'Any status' if x else y }}{{ _('Filter') }}<b>{{ value }}</b> · Lotline"
        "{% for v, label in [('open', 'Open'), ('all', _('All'))] %}{{ 'done' if v }}{% endfor %}"
        "{{ pgettext('verb', 'Open') }}"
    )
    assert untranslated_markup(source) == ['title="Due soon"', "Open   tasks"]
    assert untranslated_literals(source) == ["Any status", "Open"]
    assert template_msgids(source) == {"Search", "Filter", "All", "verb\x04Open"}
    python = (
        'translate(locale, "Hello %(name)s", name=x); N_("Bye")\n'
        'raise ApiError(409, "lot %(lot)s is on hold", lot=n)\n'
        'OutcomeSpec(name="approve", label="Approve")\n'
        'SEVERITY_LABELS = {"minor": "Minor"}\nIDS = {"a": "not a label"}\n'
        'raise refuse("Conflict", "shipment %(n)s is late", n=n)\n'
        'TaskSpec(**titled("Close %(nc)s", nc=n), **described("Sign to close."))'
    )
    assert python_msgids(python) == {
        "Hello %(name)s",
        "Bye",
        "lot %(lot)s is on hold",
        "Approve",
        "Minor",
        "shipment %(n)s is late",
        "Close %(nc)s",
        "Sign to close.",
    }
    # labels passed another way: a `*_label`/`title` keyword or parameter default, a helper's
    # label argument (its own module's helper, or one another module defines: `labels`)
    helpers = (
        'def again_or_cancel(again, again_label, *, reason_label="Why it is cancelled"): ...\n'
        "class Flow:\n"
        "    def _field(self, name, label, kind): ...\n"
        '    def spec(self): return self._field("note", "Your note", "text")\n'
        "def _choice(name: str, label: str, choices: list[str]) -> None: ...\n"
        '_choice("level", "Effectiveness check level", ["1", "2"])\n'
        'again_or_cancel("retry", "Pick again", reason_label="Why the order is cancelled")\n'
        'imported("lot", "Lot number"); notes("Not a label", "nor this")\n'
        'FastAPI(title="Lotline API"); TaskSpec(title="Triage")\n'
    )
    assert python_msgids(helpers, {"imported": [1]}) == {
        "Why it is cancelled",
        "Your note",
        "Effectiveness check level",
        "Pick again",
        "Why the order is cancelled",
        "Lot number",
        "Triage",
    }
    # the keys of a task's context, as the task page translates them (`k|context_label`): the
    # dicts passed as `context=`/`about=`, through the names, attributes and functions they are
    # built from; not a key built with an f-string, nor the keys of another dict
    contexts = (
        "class Recall:\n"
        "    def run(self, fields, note):\n"
        '        self._classification["Health hazard"] = fields["hazard"]\n'
        '        self._classification.update({"Effectiveness check level": fields["level"]})\n'
        '        notes = self._reopened | {"Your last plan": note}\n'
        '        notes["Rejected"] = note\n'
        "        task_spec(about=self._about() | self._classification, context=notes)\n"
        '        task_spec(about={}, context={"Refused": note} if note else {**_lots(note)})\n'
        '        self._reopened = {"Problems": note}\n'
        '        values = {"not_a_context": 1}; values["nor_this"] = 2\n'
        "    def _about(self):\n"
        '        return {"Recall": self.number, f"Lot {self.lot}": "", **dict(x, Scope=1)}\n'
        "def _lots(note):\n"
        '    return {"Lots reached": note}\n'
        "def picks_context(picks):\n"
        '    return {"field_name": 1}\n'
    )
    assert python_msgids(contexts) == {
        "Health hazard",
        "Effectiveness check level",
        "Your last plan",
        "Rejected",
        "Refused",
        "Problems",
        "Recall",
        "Scope",
        "Lots reached",
        "Field name",  # a key that is an identifier reads as the page shows it
    }


def test_labels_passed_another_way_read_in_chinese() -> None:
    """What the wider scan found reaches a Chinese reader translated: a `*_label` default and
    keyword of `again_or_cancel`, the recall's `_choice` label, and the context keys of a task,
    shown as the task page shows them (`_(f.label)`, `k|context_label`, `task|context_text(k)`)."""
    spec = TaskSpec.model_validate(
        {
            "step": "classification-1",
            "kind": "review",
            "process_kind": "recall",
            "process_id": "recall-RC-1",
            "business_key": "RC-1",
            "title": "Classify RC-1",
            "candidates": Candidates(groups=["qa"]),
            "fields": [
                _choice("effectiveness_level", "Effectiveness check level", list("ABCDE")),
                *again_or_cancel("retry", "Pick again", "Cancel the shipment")["fields"],
                *again_or_cancel(
                    "retry", "Pick again", "Cancel", reason_label="Why the order is cancelled"
                )["fields"],
            ],
            "outcomes": [OutcomeSpec(name="classified", label="Submit for approval")],
            # the recall's context: its classification, by `self._classification.update(…)`
            "context": {"Effectiveness check level": "B", "Classified by": "alice"},
        }
    )
    page = templates.env.from_string(
        "{% for f in task.fields %}{{ _(f.label) }}|{% endfor %}"
        "{% for k in task.context %}{{ k|context_label }}: {{ task|context_text(k) }}|{% endfor %}"
    )
    shown = page.render(task=spec, locale="zh_Hans", _=i18n.gettext_for("zh_Hans"))
    assert shown == ("有效性检查级别|取消原因|订单取消原因|有效性检查级别: B|分级人: alice|"), shown
    english = page.render(task=spec, locale="en", _=i18n.gettext_for("en"))
    assert english == (
        "Effectiveness check level|Why it is cancelled|Why the order is cancelled|"
        "Effectiveness check level: B|Classified by: alice|"
    ), english


def test_values_and_refusals_read_in_the_locale() -> None:
    moment = datetime(2026, 12, 3, 14, 5, tzinfo=UTC)
    assert i18n.format_moment(moment, "en") == "2026-12-03 14:05 UTC"
    assert i18n.format_moment(moment, "zh_Hans") == "2026年12月3日 14:05 UTC"
    assert i18n.format_day(date(2026, 12, 3), "zh_Hans") == "2026年12月3日"
    assert i18n.format_quantity(Decimal("12000.0000"), "zh_Hans") == "12,000"
    assert i18n.format_quantity(Decimal("1.5500"), "en") == "1.55"
    assert i18n.format_money(Decimal("1800"), "EUR", "zh_Hans") == "1,800.00 EUR"
    assert (i18n.format_share(1, 3, "en"), i18n.format_share(1, 3, "zh_Hans")) == ("33 %", "33%")
    due = i18n.format_due(moment + timedelta(hours=5, minutes=3), "zh_Hans", now=moment)
    assert due == "5 小时后到期"
    assert i18n.format_due(moment - timedelta(days=3), "en", now=moment) == "overdue by 3 d"
    assert i18n.country_name("US", "zh_Hans") == "美国"

    assert i18n.preferred("zh-CN,zh;q=0.9,en;q=0.8") == "zh_Hans"
    assert i18n.preferred("en-GB,zh;q=0.5") == "en"
    assert i18n.preferred("zh-TW") == "en"  # traditional Chinese is not ours: English
    assert i18n.preferred(None) == "en"

    refusal = not_found(Message("Task %(id)s", id=7))
    assert refusal.detail == "Task 7 was not found; check the id"  # what the API answers
    assert i18n.translate_message("zh_Hans", refusal.detail) == "未找到任务 7；请检查编号"
    composed = "Title: fill this in; Due date: must be more than 0"
    assert i18n.translate_message("zh_Hans", composed) == "标题：此项必填；到期日：必须大于 0"
    assert i18n.translate_message("en", composed) == composed
    # a workflow's refusal carries its template to the API, which answers in the reader's language
    said = refusal_message(
        refuse("Conflict", "shipment %(number)s is %(status)s", number="S-1", status="cancelled")
    )
    assert said == "shipment S-1 is cancelled"
    assert i18n.translate_message("zh_Hans", said) == "发货 S-1 的状态为“已取消”"
    # an answer's message (workflows.wording.answered): the English as before, its template kept
    answer = DecisionOutcome(
        task_id=7,
        outcome="approve",
        task_status="open",
        final_outcome=None,
        **answered(
            "Decision recorded. The task moves to stage %(stage)s of %(stages)s.", stage=2, stages=3
        ),
    )
    assert answer.message == "Decision recorded. The task moves to stage 2 of 3."
    assert i18n.translate_message("zh_Hans", i18n.answer_message(answer)) == (
        "决定已记录。任务进入第 2 阶段（共 3 个阶段）。"
    )
    older = answer.model_copy(update={"message_template": None, "message_values": None})
    assert i18n.answer_message(older) == answer.message  # an older answer: its text
    # a database trigger's lot refusal (erp/lots.py): its English as the trigger said it
    trigger = "lot L-7 is ON_HOLD (complaint CMP-1): it cannot be shipped"
    held = refusal_message(refuse("LotRefused", lots.trigger_said(trigger, "LL002")))
    assert held == trigger
    assert i18n.translate_message("zh_Hans", held) == (
        "批次 L-7 的状态为“已冻结”（complaint CMP-1）：不能发货"
    )
    assert lots.trigger_said("lot L-7 did something new", "LL002") == "lot L-7 did something new"

    # our own validator's problem (schemas/, ValueError(said(…))) reaches a form with its template
    with pytest.raises(ValidationError) as invalid:
        ProposedAction.model_validate({"kind": "item_revision", "target": "TB-0150"})
    problem = form_problems.said(invalid.value.errors()[0])
    assert problem == "item_revision needs new_revision"
    assert i18n.translate_message("zh_Hans", problem) == "item_revision 需要填写 new_revision"

    # `_` escapes the text and plain values, keeps markup values (a macro's output)
    gettext = i18n.gettext_for("zh_Hans")
    shown = gettext("Found by serial %(serial)s of this lot.", serial=Markup("<b>S&1</b>"))
    assert shown == Markup("通过本批次的序列号 <b>S&1</b> 找到。")
    assert gettext("for %(on_behalf_of)s", on_behalf_of="<x>") == Markup("代表 &lt;x&gt;")


# ---------------------------------------------------------------- a person who reads Chinese


async def test_a_person_chooses_chinese_and_the_pages_errors_and_api_follow(site: Site) -> None:
    # before login the browser's language decides
    visitor = await site.browser()
    english = await visitor.get("/login")
    assert "Log in to Lotline" in text_of(english.text) and '<html lang="en">' in english.text
    chinese = await visitor.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert "登录 Lotline" in text_of(chinese.text) and '<html lang="zh-Hans">' in chinese.text

    process_id = await site.start_approval()
    task = await site.open_task(process_id)
    bob = await site.as_user("bob")  # an approver in qa; English until he chooses
    assert "Inbox" in text_of((await bob.get("/")).text)

    saved = await bob.post("/settings", {"locale": "zh_Hans"})
    assert saved.status_code == 303, saved.text
    async with site.sessions() as session:
        row = await session.scalar(
            select(AuditEntry).where(
                AuditEntry.action == "user.locale_changed", AuditEntry.entity_id == "bob"
            )
        )
    assert row is not None and row.before == {"locale": "en"} and row.after == {"locale": "zh_Hans"}

    inbox = text_of((await bob.get("/")).text)
    assert "待办" in inbox and "退出登录" in inbox and "后到期" in inbox, inbox
    page = text_of((await bob.get(f"/tasks/{task.id}")).text)
    assert "待决定事项" in page and "您的决定" in page and "批准" in page, page
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d UTC", page), page
    settings = text_of((await bob.get("/settings")).text)
    assert "您的语言已保存" not in settings and "简体中文" in settings

    # refusals: a page shows the translation, the API English unless asked for Chinese
    missing = await bob.get("/tasks/999999")
    assert missing.status_code == 404 and "未找到任务 999999；请检查编号。" in text_of(missing.text)
    forged = await bob.post(f"/tasks/{task.id}/claim", csrf="forged")
    assert forged.status_code == 403
    assert "表单已过期或并非来自本网站" in text_of(forged.text)

    headers = await site.api.token("bob")
    me = await site.api.http.get("/api/v1/users/me", headers=headers)
    assert me.status_code == 200 and me.json()["locale"] == "zh_Hans", me.text
    wrong = await site.api.http.put(
        "/api/v1/users/me/locale", json={"locale": "de"}, headers=headers
    )
    assert wrong.status_code == 422
    assert wrong.json()["detail"].startswith("de is not a language Lotline speaks")
    asked = await site.api.http.put(
        "/api/v1/users/me/locale",
        json={"locale": "de"},
        headers=headers | {"Accept-Language": "zh"},
    )
    assert asked.json()["detail"].startswith("Lotline 不支持语言 de")

    # what a workflow says: the title of a task it opened, and its refusal, in Chinese for bob
    started = await site.api.http.post(
        "/api/v1/processes/change-control", json=CHANGE, headers=await site.api.token("alice")
    )
    assert started.status_code == 201, started.text
    triage = await site.open_task(started.json()["id"])
    assert triage.title == f"Triage {triage.business_key}: {CHANGE['title']}"  # the row: English
    in_chinese = f"初审 {triage.business_key}：{CHANGE['title']}"
    assert in_chinese in text_of((await bob.get("/")).text)
    assert in_chinese in text_of((await bob.get(f"/tasks/{triage.id}")).text)
    decision = f"/api/v1/tasks/{task.id}/decision"
    bogus = {"outcome": "ship_it", "fields": {}}
    said = await site.api.http.post(
        decision, json=bogus, headers=headers | {"Accept-Language": "zh"}
    )
    assert said.status_code == 422, said.text
    assert said.json()["detail"].startswith("此处不允许结果“ship_it”；请从以下选项中选择："), (
        said.text
    )
    said = await site.api.http.post(decision, json=bogus, headers=headers)
    assert said.json()["detail"].startswith("outcome 'ship_it' is not allowed here"), said.text
    # a lot lookup of erp/trace.py: on the trace page, and the API's 404 when asked for Chinese
    unknown = text_of((await bob.get("/trace", params={"q": "NOPE-1"})).text)
    assert "系统中没有批次 NOPE-1；请核对批次号或扫描其标签。" in unknown, unknown
    lot = await site.api.http.get(
        "/api/v1/lots/NOPE-1", headers=headers | {"Accept-Language": "zh"}
    )
    assert lot.status_code == 404, lot.text
    assert lot.json()["detail"] == "系统中没有批次 NOPE-1；请核对批次号或扫描其标签"
    lot = await site.api.http.get("/api/v1/lots/NOPE-1", headers=headers)
    assert lot.json()["detail"] == "lot NOPE-1 is not known; check the lot number or scan its label"
    # a process's title: English in its row, from its template in the reader's language
    shipped = await site.api.http.post(
        "/api/v1/processes/shipment", json=SHIPMENT, headers=site.api.mes
    )
    assert shipped.status_code == 201, shipped.text

    async def registered() -> Process | None:
        async with site.sessions() as session:
            return await session.get(Process, shipped.json()["id"])

    process = await eventually(registered, timeout=30, what="the shipment registered")
    wording = process.title_wording or {}
    named = wording.get("values", {})
    assert wording.get("template") == "%(number)s to %(consignee)s", process.title_wording
    assert process.title == f"{named['number']} to {named['consignee']}"  # as it always read
    in_chinese = f"{named['number']}：发往 {named['consignee']}"
    assert in_chinese in text_of((await bob.get("/processes")).text)
    assert in_chinese in text_of((await bob.get("/supply", params={"kind": "shipment"})).text)
    back = await site.api.http.put(
        "/api/v1/users/me/locale", json={"locale": "en"}, headers=headers
    )
    assert back.status_code == 200 and back.json() == {"locale": "en"}
    assert "Inbox" in text_of((await bob.get("/")).text)

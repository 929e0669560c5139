"""What the code can write and offer, read from the code itself: every audit action (the
`action=` literals, the literals an action is picked from (`Refuser(…, "task.claim_refused")`,
`LOT_ACTIONS`), each f-string action (`f"process.{data.status}"`) expanded with the values the
workflows pass) and every outcome a workflow's task offers."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from schemas.change_control import ActionKind
from schemas.nonconformance import DispositionAction

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("activities", "api", "erp", "ui", "workflows")
ACTION = re.compile(r"([a-z_]+)\.([a-z_]+)")
# `<word>.<word>` texts that are no audit action: table columns, templates, notification kinds
NOT_ACTIONS = {"recall.notice", "recall.reminder"}
NOT_SUFFIXES = {"id", "html"}


@cache
def trees(folder: str) -> dict[Path, ast.Module]:
    return {
        path: ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "migrations" not in path.parts
    }


@cache
def parents(path: Path, folder: str) -> dict[ast.AST, ast.AST]:
    return {
        child: node
        for node in ast.walk(trees(folder)[path])
        for child in ast.iter_child_nodes(node)
    }


def _function(
    path: Path, folder: str, node: ast.AST
) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    up = parents(path, folder)
    while node in up:
        node = up[node]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return node
    return None


def _called(call: ast.Call) -> tuple[str, bool]:
    """The called name and whether it is a method of this object (`self._finish`)."""
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr, isinstance(func.value, ast.Name) and func.value.id == "self"
    if isinstance(func, ast.Name):
        return func.id, False
    return "", False


def _calls(folder: str, name: str, path: Path | None = None) -> Iterator[tuple[Path, ast.Call]]:
    for where, tree in trees(folder).items():
        if path is not None and where != path:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called(node)[0] == name:
                yield where, node


def strings(
    path: Path, folder: str, expr: ast.AST, seen: frozenset[object] = frozenset()
) -> set[str]:
    """The texts an expression can be: a literal, either side of `a if … else b`, a dict's values
    (`{"approve": "approved"}[outcome]`), a variable's assignments in its function, or a
    parameter's default and what every caller passes for it."""
    if isinstance(expr, ast.Constant):
        return {expr.value} if isinstance(expr.value, str) else set()
    if isinstance(expr, ast.IfExp):
        return strings(path, folder, expr.body, seen) | strings(path, folder, expr.orelse, seen)
    if isinstance(expr, ast.BoolOp):
        return set().union(*(strings(path, folder, v, seen) for v in expr.values))
    if isinstance(expr, ast.Dict):
        return set().union(*(strings(path, folder, v, seen) for v in expr.values))
    if isinstance(expr, ast.Subscript):
        return strings(path, folder, expr.value, seen)
    if not isinstance(expr, ast.Name):
        return set()
    function = _function(path, folder, expr)
    if function is None or (path, function.name, expr.id) in seen:
        return set()
    seen = seen | {(path, function.name, expr.id)}
    found: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == expr.id for t in node.targets
        ):
            found |= strings(path, folder, node.value, seen)
    found |= _passed(path, folder, function, expr.id, seen)
    return found


def _passed(
    path: Path,
    folder: str,
    function: ast.FunctionDef | ast.AsyncFunctionDef,
    name: str,
    seen: frozenset[object],
) -> set[str]:
    """A parameter's default and what the callers pass for it (a method: callers in its file)."""
    arguments = function.args
    positional = [a.arg for a in (*arguments.posonlyargs, *arguments.args)]
    keyword_only = [a.arg for a in arguments.kwonlyargs]
    if name not in positional and name not in keyword_only:
        return set()
    found: set[str] = set()
    if name in positional:
        defaults = dict(
            zip(
                positional[len(positional) - len(arguments.defaults) :],
                arguments.defaults,
                strict=True,
            )
        )
    else:
        defaults = {
            a.arg: d
            for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)
            if d is not None
        }
    if name in defaults:
        found |= strings(path, folder, defaults[name], seen)
    method = bool(positional) and positional[0] == "self"
    index = positional.index(name) - method if name in positional else None
    for where, call in _calls(folder, function.name, path if method else None):
        if _called(call)[1] != method:
            continue
        if index is not None and index < len(call.args):
            found |= strings(where, folder, call.args[index], seen)
        for keyword in call.keywords:
            if keyword.arg == name:
                found |= strings(where, folder, keyword.value, seen)
    return found


def passed_to(model: str, field: str, folder: str = "workflows") -> set[str]:
    """Every text the workflows can put in `model(field=…)` (an activity's input)."""
    return {
        text
        for path, call in _calls(folder, model)
        for keyword in call.keywords
        if keyword.arg == field
        for text in strings(path, folder, keyword.value)
    }


def record_status_entities() -> set[str]:
    """The entity types `activities.records.set_record_status` is called for."""
    return {
        text
        for path, call in _calls("activities", "set_record_status")
        for keyword in call.keywords
        if keyword.arg == "entity_type"
        for text in strings(path, "activities", keyword.value)
    }


def _verdicts() -> set[str]:
    path = ROOT / "activities" / "recall.py"
    for node in ast.walk(trees("activities")[path]):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "verdict" for t in node.targets
        ):
            return strings(path, "activities", node.value)
    return set()


# the status model of each record `set_record_status` writes for (activities/records.py)
RECORD_STATUS_INPUTS = {"nonconformance": "SetNcStatusInput", "recall": "SetRecallStatusInput"}


def expand(template: str) -> set[str] | None:
    """The actions an f-string action can be, from the values the code gives it; None for a
    template this scan does not know yet."""
    prefix = lambda p, values: {f"{p}{v}" for v in values}  # noqa: E731
    if template == "f'process.{data.status}'":  # activities/process.update_process
        return prefix("process.", passed_to("UpdateProcessInput", "status") - {"running"})
    if template == "f'{entity_type}.{status}'":  # activities/records.set_record_status
        return set().union(
            *(
                prefix(f"{entity}.", passed_to(RECORD_STATUS_INPUTS[entity], "status"))
                for entity in record_status_entities()
            )
        )
    families = {
        "f'change.{data.status}'": ("change.", "SetChangeStatusInput", "status"),
        "f'capa.{data.status}'": ("capa.", "SetCapaStatusInput", "status"),
        "f'capa.{data.outcome}'": ("capa.", "RecordEffectivenessInput", "outcome"),
        "f'customer_order.{data.status}'": ("customer_order.", "SetOrderStatusInput", "status"),
        "f'purchase.{data.status}'": ("purchase.", "SetPurchaseStatusInput", "status"),
        "f'recall.termination_{data.outcome}'": (
            "recall.termination_",
            "RecordTerminationInput",
            "outcome",
        ),
    }
    if template in families:
        start, model, field = families[template]
        return prefix(start, passed_to(model, field))
    if template == "f'recall.check_{verdict}'":
        return prefix("recall.check_", _verdicts())
    if template == "f'lot.{data.action.value}'":
        return prefix("lot.", (a.value for a in DispositionAction))
    if template == "f'master_data.{action.kind.value}'":
        return prefix("master_data.", (k.value for k in ActionKind))
    return None


def written() -> tuple[set[str], dict[str, set[str] | None]]:
    """The literal actions and each f-string action's expansion (None: not known)."""
    literal: set[str] = set()
    templates: dict[str, set[str] | None] = {}
    for folder in FOLDERS:
        for path, tree in trees(folder).items():
            for node in ast.walk(tree):
                if not (isinstance(node, ast.keyword) and node.arg == "action"):
                    continue
                formatted = [n for n in ast.walk(node.value) if isinstance(n, ast.JoinedStr)]
                inside = {id(c) for f in formatted for c in ast.walk(f)}
                for inner in ast.walk(node.value):
                    if isinstance(inner, ast.Constant | ast.Name) and id(inner) not in inside:
                        # a literal, or a variable: its assignments, what callers pass for it
                        literal |= {t for t in strings(path, folder, inner) if ACTION.fullmatch(t)}
                for f in formatted:
                    text = ast.unparse(f)
                    templates[text] = expand(text)
    # an action picked from literals elsewhere (`Refuser(…, "task.claim_refused")`, a table)
    prefixes = {a.split(".")[0] for a in literal} | {
        a.split(".")[0] for found in templates.values() for a in found or ()
    }
    for folder in FOLDERS:
        for tree in trees(folder).values():
            inside = {
                id(c) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for c in ast.walk(n)
            }
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    match = ACTION.fullmatch(node.value)
                    if (
                        match
                        and id(node) not in inside
                        and match.group(1) in prefixes
                        and match.group(2) not in NOT_SUFFIXES
                        and node.value not in NOT_ACTIONS
                    ):
                        literal.add(node.value)
    return literal, templates


def outcome_names(part: str = "name") -> set[str]:
    """The value (or the label) of every outcome the workflows' tasks offer
    (`OutcomeSpec(name=…, label=…)`, also those `again_or_cancel("retry", "Pick again", …)`
    builds)."""
    return {
        text
        for path, call in _calls("workflows", "OutcomeSpec")
        for keyword in call.keywords
        if keyword.arg == part
        for text in strings(path, "workflows", keyword.value)
    }

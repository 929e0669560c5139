"""A task's field labels and context keys in the reader's language.

A workflow that composes a label or a key with values writes it as a `said(…)`
(`label=said("Lot %(lot)s (%(what)s)", …)`, `{said("Action %(n)s", n=1): …}`); the task spec
keeps its wording (`FieldSpec.label_wording`, `TaskSpec.context_wording[key]["key"]`,
schemas/human_task.py) and the task page renders it here, in the catalog's language, a value that
is a catalog text (`Regulatory (RA)`, `open po`) translated too. A constant label or key, and
every label and key of a task opened before, is looked up as it is (docs/i18n.md).
"""

from __future__ import annotations

import re
from typing import Any

from ui import i18n


def _rendered(table: dict[str, str], wording: Any) -> Any:
    """A wording (`{"template", "values", "inner"?}`) with the catalog's texts, recursively."""
    if isinstance(wording, str):
        return table.get(wording, wording)
    if not (isinstance(wording, dict) and isinstance(wording.get("template"), str)):
        return wording
    values = {name: _rendered(table, v) for name, v in (wording.get("values") or {}).items()}
    for name, inner in (wording.get("inner") or {}).items():
        values[name] = _rendered(table, inner)
    template = str(table.get(wording["template"]) or wording["template"])
    return template % values if values else template


def worded(locale: str | None, english: str, wording: Any, plain: str | None = None) -> str:
    """`english` in the locale through its wording, when the wording gives back exactly that
    English; else (no wording, an older task, values that do not fit) `plain` (the English as
    it reads, `english` unless given) looked up as it is."""
    shown = english if plain is None else plain
    if not (isinstance(wording, dict) and isinstance(wording.get("template"), str)):
        return i18n.translate(locale, shown) if shown else shown
    try:
        if _rendered({}, wording) != english:
            return i18n.translate(locale, shown) if shown else shown
        text = _rendered(i18n.catalog(i18n.supported(locale)), wording)
    except (KeyError, TypeError, ValueError):  # a template and values that do not fit
        return shown
    return text if isinstance(text, str) else shown


def _get(item: object, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def field_label(locale: str | None, task: object, name: str) -> str:
    """The label of the task's field `name` (`{{ task|field_label(f.name) }}`); a name that is no
    field of the task (an outcome's required field of an older spec) is looked up as it is."""
    field = next((f for f in _get(task, "fields") or [] if _get(f, "name") == name), None)
    if field is None:
        return i18n.translate(locale, name) if name else name
    label = str(_get(field, "label") or name)
    return worded(locale, label, _get(field, "label_wording"))


NUMBERED = re.compile(r"^([a-z][a-z0-9]*(?:_[a-z][a-z0-9]*)*)_([0-9]+)$")


def context_key(locale: str | None, task: object, key: str, plain: str) -> str:
    """A key of the task's context (`{{ task|context_key(k) }}`): through the wording of a key
    the workflow composed (`context_wording[key]["key"]`), else `plain` (the key as the page
    reads it, `ui.pages.context_label`) looked up as it is; a numbered field name (`lot_1`,
    `Lot 1`) as its word and number (`批次 1`) when the catalog has the word."""
    entry = (_get(task, "context_wording") or {}).get(key)
    wording = entry.get("key") if isinstance(entry, dict) else None
    numbered = NUMBERED.match(key)
    if wording is None and numbered:
        word = numbered[1].replace("_", " ")
        word = word[:1].upper() + word[1:]
        if f"{word} {numbered[2]}" == plain:
            wording = {
                "template": "%(category)s %(n)s",
                "values": {"category": word, "n": int(numbered[2])},
            }
            key = plain
    return worded(locale, key, wording, plain)

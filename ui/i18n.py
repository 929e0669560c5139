"""The UI's languages: English (the source text) and Simplified Chinese.

Every string a person reads is written in English in the template or the code and looked up in the
catalogs under `ui/locales/<locale>/*.po` (gettext PO files, read with Babel; msgid is the English
text, msgstr its translation). All PO files of a locale are merged, so each area keeps its own file.

Templates call `_("text")` or `_("Due %(when)s", when=...)`; `ui.pages.render` puts `_`,
`pgettext` and `locale` in every template's context, chosen from the logged-in user's `locale`
(before login, from Accept-Language). Also here: dates, numbers and money in the locale, and
`translate_message` for the refusals (`api.errors.Message`). How-to and the test: docs/i18n.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from markupsafe import Markup

LOCALES_DIR = Path(__file__).parent / "locales"
DEFAULT_LOCALE = "en"
LOCALES = {"en": "English", "zh_Hans": "简体中文"}


@cache
def catalog(locale: str) -> dict[str, str]:
    """msgid → msgstr for one locale, every PO file of it merged; English has none (it is the source)."""
    messages: dict[str, str] = {}
    for path in sorted((LOCALES_DIR / locale).glob("*.po")):
        with path.open("rb") as handle:
            for message in read_po(handle, locale=locale.replace("_Hans", "")):
                if message.id and message.string and not message.fuzzy:
                    messages[keyed(message.context, str(message.id))] = str(message.string)
    return messages


def keyed(context: str | None, message: str) -> str:
    """The catalog key of a message with a msgctxt (gettext's convention): one English word
    that reads two ways ("Open" the task, the "Open" quantity) has one entry per context."""
    return f"{context}\x04{message}" if context else message


def supported(locale: str | None) -> str:
    return locale if locale in LOCALES else DEFAULT_LOCALE


def translate(locale: str | None, message: str, /, **values: Any) -> str:
    """The message in the locale (English when the locale has no translation), with `%(name)s`
    placeholders filled from `values`."""
    text = catalog(supported(locale)).get(message, message) if message else message
    return text % values if values else text


def gettext_for(locale: str | None) -> Callable[..., Markup]:
    """The `_` of a template: the translation as safe markup, the text and values escaped (a value
    that is markup already, a macro's output, stays as it is)."""
    chosen = supported(locale)

    def gettext(message: str | None, /, **values: Any) -> Markup:
        if message is None:
            return Markup("")
        if not isinstance(message, str):  # a number, an undefined value: shown as it is
            message = str(message)
        text = catalog(chosen).get(message, message) if message else message
        return Markup.escape(text) % values if values else Markup.escape(text)

    return gettext


def pgettext_for(locale: str | None) -> Callable[..., Markup]:
    """The `pgettext` of a template: `pgettext("verb", "Open")`, for a word whose translation
    depends on what it means here; English shows the word."""
    gettext = gettext_for(locale)
    chosen = supported(locale)

    def pgettext(context: str, message: str, /, **values: Any) -> Markup:
        text = catalog(chosen).get(keyed(context, message), message)
        return gettext(text, **values)

    return pgettext


def N_(message: str) -> str:
    """Marks a text as one to translate where it is shown (a label kept in a constant); the
    translation test collects it."""
    return message


# ---------------------------------------------------------------- values in the locale
# English keeps the ISO dates and the "12 %" the pages have always shown; Chinese follows CLDR
# (2026年12月3日, 12%). Times are always UTC and say so, in every language.


def babel_locale(locale: str | None) -> str:
    return "zh_Hans_CN" if supported(locale) == "zh_Hans" else "en"


def format_quantity(value: Decimal | int | None, locale: str | None = None) -> str:
    """12000.0000 → '12,000'; 1.5500 → '1.55' (every digit the value has, none added)."""
    if value is None:
        return "—"
    number = Decimal(value).normalize()
    return format_decimal(number, locale=babel_locale(locale), decimal_quantization=False)


def format_money(value: Decimal | None, currency: str = "EUR", locale: str | None = None) -> str:
    """'1,800.00 EUR': the amount and the ISO code, so no one mistakes ¥ for CNY or JPY."""
    if value is None:
        return "—"
    return format_currency(
        Decimal(value), currency, format="#,##0.00 ¤¤", locale=babel_locale(locale)
    )


def format_share(part: int, whole: int, locale: str | None = None) -> str:
    if not whole:
        return "—"
    pattern = "#,##0%" if supported(locale) == "zh_Hans" else "#,##0 %"
    return format_percent(part / whole, format=pattern, locale=babel_locale(locale))


def format_day(value: date | datetime | None, locale: str | None = None) -> str:
    """A date: 2026-12-03 in English, 2026年12月3日 in Chinese; a datetime with its UTC time."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return format_moment(value, locale)
    if supported(locale) == "zh_Hans":
        return format_date(value, format="long", locale=babel_locale(locale))
    return value.isoformat()


def format_moment(value: datetime | None, locale: str | None = None) -> str:
    """2026-12-03 14:05 UTC; 2026年12月3日 14:05 UTC."""
    if value is None:
        return "—"
    moment = value.astimezone(UTC)
    if supported(locale) == "zh_Hans":
        day = format_date(moment.date(), format="long", locale=babel_locale(locale))
        return f"{day} {moment:%H:%M} UTC"
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def country_name(code: str | None, locale: str | None = None) -> str:
    """US → 'United States' / '美国' (CLDR's names); an unknown code stays as it is."""
    if not code:
        return "—"
    return Locale.parse(babel_locale(locale)).territories.get(code.upper(), code)


def format_due(
    value: datetime | None, locale: str | None = None, now: datetime | None = None
) -> str:
    """'due in 5 h', 'overdue by 2 d' — how a due time reads at a glance."""
    if value is None:
        return translate(locale, "no due time")
    delta = value - (now or datetime.now(UTC))
    seconds = abs(delta.total_seconds())
    if seconds < 3600:
        amount = translate(locale, "%(n)s min", n=max(1, int(seconds // 60)))
    elif seconds < 86400 * 2:
        amount = translate(locale, "%(n)s h", n=int(seconds // 3600))
    else:
        amount = translate(locale, "%(n)s d", n=int(seconds // 86400))
    if delta.total_seconds() >= 0:
        return translate(locale, "due in %(amount)s", amount=amount)
    return translate(locale, "overdue by %(amount)s", amount=amount)


def translate_message(
    locale: str | None, message: object, outcomes: Mapping[str, str] | None = None
) -> str:
    """A message from a service or a workflow in the locale: an `api.errors.Message` through its
    English template and values (a value that is a text is translated too when the catalog has
    it), a plain text by looking it up as it is (a workflow's refusal is a constant text).
    `outcomes` (`outcome_labels(task)`: outcome name → its label on the task's spec) is for a
    caller that has the task the message is about: a `%(outcome)s` then reads as that spec's
    label translated ("Approve termination" → 批准终止), not by the outcome's name."""
    if message is None:
        return ""
    template = getattr(message, "template", None)
    if isinstance(message, str) and isinstance(template, str):
        # a Message, or a workflows.wording.Said (erp's lot lookups, a workflow's problems)
        values = {
            name: _value_in(locale, name, value, outcomes)
            for name, value in getattr(message, "values", {}).items()
        }
        return translate(locale, template, **values)
    text = str(message)
    table = catalog(supported(locale))
    if not table or text in table:
        return translate(locale, text)
    # a plain text shown as a whole message (a page's `sentence`), written as a form's problems
    # "Label: problem; Label: problem", reads part by part; a value inside a wording never does
    return "；".join(_problem_in(table, part) for part in text.split("; "))


ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# a value that is wholly an ISO 8601 date and time (a reminder's "due %(when)s"): 2026-12-07T09:30,
# seconds, fractions and an offset (Z, +00:00) optional
ISO_MOMENT = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?"
)


def moment_in(locale: str | None, value: object) -> str | None:
    """A value that is a date or a datetime, or a text that is wholly an ISO date or datetime
    (`2026-12-07`, `2026-12-07T09:30:00+00:00`), as the locale writes it (`format_day`,
    `format_moment`; a time without an offset is UTC); None for any other value, and for English,
    which keeps the value as recorded."""
    if supported(locale) == DEFAULT_LOCALE:
        return None
    if isinstance(value, datetime | date):
        moment: date | datetime = value
    elif isinstance(value, str) and ISO_DAY.fullmatch(value):
        try:
            moment = date.fromisoformat(value)
        except ValueError:  # 2026-13-45 is no day: as written
            return None
    elif isinstance(value, str) and ISO_MOMENT.fullmatch(value):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:  # 2026-12-07T25:00 is no time: as written
            return None
    else:
        return None
    if isinstance(moment, datetime) and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return format_day(moment, locale)
    except (OverflowError, ValueError):  # 0001-01-01T00:00+05:00 has no UTC time: as written
        return None


def _value_in(
    locale: str | None, name: str, value: object, outcomes: Mapping[str, str] | None = None
) -> object:
    """A value of a message in the locale: a date or datetime (`%(day)s`, `%(when)s`, stored
    ISO) as the locale writes it, a decision's `%(outcome)s` (`approve`) as the label of the
    task's own spec reads when the caller gave it (`outcomes`) and the catalog has it, else as
    its outcome label reads (`Approve`), a wording of ours (a `Message`, a `Said`) translated
    with its values, another text translated when the catalog has that exact text (never split
    as a form's problems: `SUP-0001: 60` stays as it is); any other value as it is. English
    keeps the outcome's name, as the workflow wrote it."""
    shown = moment_in(locale, value)
    if shown is not None:
        return shown
    if not isinstance(value, str):
        return value
    if name == "outcome" and value:
        table = catalog(supported(locale))
        own = (outcomes or {}).get(value)
        label = value.replace("_", " ")
        return (
            (table.get(own) if own else None)
            or table.get(value)
            or table.get(label[:1].upper() + label[1:])
            or value
        )
    if isinstance(getattr(value, "template", None), str):
        return translate_message(locale, value, outcomes)
    return translate(locale, value) if value else value


def outcome_labels(task: object) -> dict[str, str]:
    """The outcomes of a task's spec, name → label (`{"approve": "Approve termination"}`), for
    `translate_message(…, outcomes=…)`: a task (`TaskOut`, a `TaskSpec`) whose `outcomes` are
    dicts or `Outcome`s; an outcome without a label is left out (it reads by its name)."""
    found: dict[str, str] = {}
    for outcome in getattr(task, "outcomes", None) or []:
        if isinstance(outcome, Mapping):
            name, label = outcome.get("name"), outcome.get("label")
        else:
            name, label = getattr(outcome, "name", None), getattr(outcome, "label", None)
        if isinstance(name, str) and isinstance(label, str) and label:
            found[name] = label
    return found


TITLE_LIMIT = 200  # what the inbox shows of a title (workflows.wording.titled cuts the English)


def task_text(locale: str | None, task: object, part: str = "title") -> str:
    """A task's title or description in the locale: from the English template and values the
    workflow put on its spec (`title_template`, `title_values`), a value that is a catalog text
    (a status, an action) translated too; a task without a template (written before, or a
    person's own title) shows its text, looked up as it is."""
    english = getattr(task, part, "") or ""
    template = getattr(task, f"{part}_template", None)
    if not template:
        return translate(locale, english) if english else english
    table = catalog(supported(locale))
    try:
        text = _spoken(
            table, {"template": template, "values": getattr(task, f"{part}_values", None)}, locale
        )
    except (KeyError, TypeError, ValueError):  # a template and values that do not fit
        return english
    if part == "title" and len(text) > TITLE_LIMIT:
        text = text[: TITLE_LIMIT - 1].rstrip() + "…"
    return text


def context_text(locale: str | None, task: object, key: str) -> str:
    """A value of a task's context in the locale: one that quotes a refusal through its wording
    (`TaskSpec.context_wording`); any other as it was recorded."""
    english = str((getattr(task, "context", None) or {}).get(key, ""))
    spoken = (getattr(task, "context_wording", None) or {}).get(key)
    if not isinstance(spoken, dict):
        return english
    try:
        text = _spoken(catalog(supported(locale)), spoken, locale)
    except (KeyError, TypeError, ValueError):  # a template and values that do not fit
        return english
    return text if isinstance(text, str) else english


def audit_reason(locale: str | None, reason: str | None, after: dict[str, Any] | None) -> str:
    """An audit row's reason in the locale: from the wording a workflow or an activity stored in
    the row's `after["reason_wording"]` (`{"template", "values", "inner"?}`,
    `workflows.wording.wording`; a value that is a catalog text, a nested refusal, translated
    too); a row without one (older, or a person's own words), or whose wording does not give
    back the recorded English, shows its reason as recorded, translated only when the catalog
    has that exact text."""
    english = reason or ""
    spoken = after.get("reason_wording") if isinstance(after, dict) else None
    if supported(locale) == DEFAULT_LOCALE or not (
        isinstance(spoken, dict) and isinstance(spoken.get("template"), str)
    ):
        return translate(locale, english) if english else english
    try:
        if _spoken({}, spoken) != english:  # a wording that does not give back what was recorded
            return english
        text = _spoken(catalog(supported(locale)), spoken, locale)
    except (KeyError, TypeError, ValueError):  # a template and values that do not fit
        return english
    return text if isinstance(text, str) else english


def _spoken(table: dict[str, str], value: Any, locale: str | None = None) -> Any:
    """A value of a task's wording in the catalog's language: a catalog text translated, a
    nested wording (`{"template", "values"}`, a quoted refusal: `workflows.wording.wording`,
    its own problems under "inner") translated with its values, recursively; a value that is
    wholly an ISO date or datetime as `locale` writes it (`moment_in`; no `locale`, or English:
    as recorded); else as it is."""
    shown = moment_in(locale, value) if locale else None
    if shown is not None:
        return shown
    if isinstance(value, str):
        return table.get(value, value)
    if not (isinstance(value, dict) and isinstance(value.get("template"), str)):
        return value
    values = {name: _spoken(table, v, locale) for name, v in (value.get("values") or {}).items()}
    for name, inner in (value.get("inner") or {}).items():
        values[name] = _spoken(table, inner, locale)
    template = str(table.get(value["template"]) or value["template"])
    return template % values if values else template


def worded(english: str, template: str | None, values: dict[str, Any] | None) -> str:
    """A text a workflow wrote with its template (`workflows.wording.titled`/`answered`) as a
    `Said`, which `translate_message` (the `sentence` filter) translates; without a template, or
    with values that do not fit it, the English text as it is."""
    if not template:
        return english
    from schemas.wording import Said  # a str that keeps its template (workflows.wording)

    try:
        return Said(template, **(values or {}))
    except (KeyError, TypeError, ValueError):
        return english


def answer_message(answer: object) -> str:
    """The `message` of an answer (`EventResult`, `DecisionResult`, `DecisionOutcome`) with its
    template (`message_template`/`message_values`; an older answer has none), to translate."""
    return worded(
        getattr(answer, "message", "") or "",
        getattr(answer, "message_template", None),
        getattr(answer, "message_values", None),
    )


def process_title(locale: str | None, process: object) -> str:
    """A process's title in the locale, from the template and values its workflow registered
    (`process.title_wording`); a process registered before (or a person's own title) shows its
    title, looked up as it is; no title, its id."""
    english = getattr(process, "title", "") or ""
    wording = getattr(process, "title_wording", None) or {}
    if isinstance(wording, dict) and wording.get("template"):
        return translate_message(
            locale, worded(english, wording["template"], wording.get("values"))
        )
    return translate(locale, english) if english else str(getattr(process, "id", "") or "")


def _problem_in(table: dict[str, str], problem: str) -> str:
    if problem in table or ": " not in problem:
        return table.get(problem, problem)
    label, said = problem.split(": ", 1)
    return f"{table.get(label, label)}：{table.get(said, said)}"


def preferred(accept_language: str | None) -> str:
    """The locale an Accept-Language header asks for first among ours: 'zh-CN,zh;q=0.9' → zh_Hans."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith("zh") and not any(t in tag for t in ("hant", "-tw", "-hk", "-mo")):
            return "zh_Hans"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LOCALE

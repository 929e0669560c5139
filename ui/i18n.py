"""The UI's languages: English (the source text) and Simplified Chinese.

Every string a person reads is written in English in the template or the code and looked up in the
catalogs under `ui/locales/<locale>/*.po` (gettext PO files, read with Babel; msgid is the English
text, msgstr its translation). All PO files of a locale are merged, so each area keeps its own file.

Templates call `_("text")` or `_("Due %(when)s", when=...)`; `ui.pages.render` puts `_` and
`locale` in every template's context, chosen from the logged-in user's `locale`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

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
                    messages[str(message.id)] = str(message.string)
    return messages


def supported(locale: str | None) -> str:
    return locale if locale in LOCALES else DEFAULT_LOCALE


def translate(locale: str | None, message: str, **values: Any) -> str:
    """The message in the locale (English when the locale has no translation), with `%(name)s`
    placeholders filled from `values`."""
    text = catalog(supported(locale)).get(message, message) if message else message
    return text % values if values else text


def gettext_for(locale: str | None) -> Callable[..., str]:
    chosen = supported(locale)

    def gettext(message: str, **values: Any) -> str:
        return translate(chosen, message, **values)

    return gettext

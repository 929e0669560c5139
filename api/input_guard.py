"""The request's input, checked before any route sees it.

- The body is at most `max_body_bytes`, whether the request says its length or not: a chunked
  upload has no Content-Length to refuse it by, so the body is counted as it arrives.
- No NUL character anywhere a value is read from (address, query, JSON or form body).
  PostgreSQL text cannot hold one. Refused only at the database, it broke requests with a 500,
  and a process start was answered 201 while its workflow's first activity then retried
  forever. Refused here, the caller is told which field has it and nothing starts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from email.message import Message as MimeHeader
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors

Refuse = Callable[[Request, int, str], Response]
# In JSON a NUL can only arrive escaped, as \u0000 (a raw one is invalid JSON); not when the
# backslash is itself escaped (\\u0000 is a backslash followed by "u0000").
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_NUL = "\x00"


class BodyTooLarge(Exception):
    """The body went past the limit while it arrived."""


class RequestInputGuard:
    """ASGI middleware: reads the body within the limit, refuses NUL characters, then hands
    the app the same body."""

    def __init__(self, app: ASGIApp, *, refuse: Refuse, max_body_bytes: int) -> None:
        self.app = app
        self.refuse = refuse
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            body = await self._read_body(receive)
        except BodyTooLarge:
            detail = errors.Message(
                "the request body is larger than %(limit)s bytes", limit=self.max_body_bytes
            )
            await self.refuse(request, 413, detail)(scope, receive, send)
            return
        if body is None:  # the client went away while sending
            return
        where = nul_in_address(scope) or nul_in_body(request.headers.get("content-type"), body)
        if where:
            detail = errors.Message(
                "the request is not valid: %(where)s: contains the NUL character (\\u0000), "
                "which no field accepts; remove it",
                where=where,
            )
            await self.refuse(request, 422, detail)(scope, receive, send)
            return
        await self.app(scope, _replaying(body, receive), send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """The app's receive: the body read already, then whatever the client sends (disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def nul_in_address(scope: Scope) -> str | None:
    """Where the path or the query string has a NUL, named as the validation errors name it."""
    if _NUL in scope.get("path", ""):
        return "the address"
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if _NUL in name or _NUL in value:
            return f"query.{name.replace(_NUL, '')}"
    return None


def nul_in_body(content_type: str | None, body: bytes) -> str | None:
    """Where a JSON or form body has a NUL (the bodies the app reads as text)."""
    kind = _media_type(content_type)
    if kind == "json" and _JSON_NUL.search(body):
        try:
            document = json.loads(body)
        except ValueError:
            return None  # not JSON after all: the validation says so
        return next(_nul_paths(document, ()), None)
    if kind == "form":
        pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
        return next((name for name, value in pairs if _NUL in name + value), None)
    return None


def _media_type(content_type: str | None) -> str | None:
    """json for no content type or a JSON one (FastAPI then parses JSON), form for a form."""
    if not content_type:
        return "json"
    header = MimeHeader()
    header["content-type"] = content_type
    subtype = header.get_content_subtype()
    if header.get_content_maintype() == "application":
        if subtype == "json" or subtype.endswith("+json"):
            return "json"
        if subtype == "x-www-form-urlencoded":
            return "form"
    return None


def _nul_paths(value: Any, path: tuple[str, ...]) -> Iterator[str]:
    """The dotted paths (as validation errors print them) of the values holding a NUL."""
    here = ".".join(path) or "body"
    if isinstance(value, str) and _NUL in value:
        yield here
    elif isinstance(value, dict):
        for key, item in value.items():
            if _NUL in key:
                yield f"{here} (a field name)"
            yield from _nul_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, (*path, str(index)))

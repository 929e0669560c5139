"""Errors that reach a person or a system: what was wrong and what to do, never a stack trace."""

from __future__ import annotations


class ApiError(Exception):
    """A refusal with an HTTP status and a message meant for the caller."""

    def __init__(self, status_code: int, detail: str, *, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} was not found; check the id")


def forbidden(why: str) -> ApiError:
    return ApiError(403, why)


def conflict(why: str) -> ApiError:
    return ApiError(409, why)


def unavailable(dependency: str) -> ApiError:
    return ApiError(
        503,
        f"{dependency} is not reachable right now; nothing was changed. Try again shortly.",
        headers={"Retry-After": "5"},
    )

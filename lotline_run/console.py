"""What the runner prints: short lines prefixed with `lotline:` on stdout."""

from __future__ import annotations

import sys


def say(message: str) -> None:
    print(f"lotline: {message}", flush=True)


def warn(message: str) -> None:
    print(f"lotline: {message}", file=sys.stderr, flush=True)


class StartupError(Exception):
    """A component could not start; the message says which and where to look."""

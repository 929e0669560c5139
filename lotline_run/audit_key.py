"""The audit trail's key for `make run`: LOTLINE_AUDIT_KEY from the environment, or else the data
directory's own, generated on the first start (only its owner may read it)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from settings import AUDIT_KEY_ENV, audit_key_is_set

KEY_FILE = "audit.key"


def ensure_audit_key(data_dir: Path) -> None:
    """Put the key into the environment the migrations, the worker and the web app inherit,
    generating it the first time. The database never holds it: that is the point."""
    if audit_key_is_set():
        return
    path = data_dir / KEY_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
    load_audit_key(data_dir)


def load_audit_key(data_dir: Path) -> None:
    """`make verify-audit`: use the data directory's key when the environment names none."""
    path = data_dir / KEY_FILE
    if not audit_key_is_set() and path.exists():
        os.environ[AUDIT_KEY_ENV] = path.read_text().strip()

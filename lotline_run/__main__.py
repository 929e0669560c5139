"""`python -m lotline_run [run|verify-audit]` (what `make run` and `make verify-audit` call)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from lotline_run.runner import Runner
from lotline_run.verify import verify_audit
from settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lotline_run",
        description="run: start PostgreSQL and Temporal (unless DATABASE_URL / TEMPORAL_ADDRESS "
        "are set), the worker and the web app, until Ctrl-C. verify-audit: check the audit "
        "trail's hash chain (exit 0 intact, 1 broken, 2 nothing to check).",
    )
    parser.add_argument("command", nargs="?", default="run", choices=("run", "verify-audit"))
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.command == "verify-audit":
        return asyncio.run(verify_audit(settings))
    runner = Runner(
        settings,
        with_api=os.environ.get("LOTLINE_NO_API", "0") != "1",
        demo=os.environ.get("LOTLINE_DEMO", "1") != "0",
    )
    return asyncio.run(runner.run())


if __name__ == "__main__":
    sys.exit(main())

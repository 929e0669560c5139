"""`python -m lotline_run [run|verify-audit|backup|restore]` (what `make run`, `make verify-audit`,
`make backup` and `make restore` call)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from lotline_run.runner import Runner
from lotline_run.verify import verify_audit
from settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lotline_run",
        description="run (the default): start PostgreSQL and Temporal (unless DATABASE_URL / "
        "TEMPORAL_ADDRESS are set), the worker and the web app, until Ctrl-C.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", help="start everything until Ctrl-C (the default)")
    commands.add_parser(
        "verify-audit",
        help="check the audit trail's hash chain (exit 0 intact, 1 broken, 2 nothing to check)",
    )
    backup = commands.add_parser(
        "backup", help="archive the ERP database and the embedded Temporal's state"
    )
    backup.add_argument(
        "--out", type=Path, help="archive to write (default backups/lotline-backup-<UTC>.tar.gz)"
    )
    restore = commands.add_parser(
        "restore",
        help="restore an archive into a new data dir (exit 0 done, 1 refused or failed, "
        "3 done with records to reconcile)",
    )
    restore.add_argument("archive", type=Path, help="a file written by `backup`")
    restore.add_argument(
        "--data-dir", type=Path, help="new, empty data directory (default LOTLINE_DATA_DIR)"
    )
    restore.add_argument(
        "--audit-key-file",
        type=Path,
        help="the backed-up data dir's audit.key (not in the archive; or set LOTLINE_AUDIT_KEY)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings.from_env()
    if args.command == "verify-audit":
        return asyncio.run(verify_audit(settings))
    if args.command == "backup":
        from lotline_run.backup import backup_command

        return asyncio.run(backup_command(settings, args.out))
    if args.command == "restore":
        from lotline_run.restore import restore_command

        return asyncio.run(
            restore_command(settings, args.archive, args.data_dir, args.audit_key_file)
        )
    runner = Runner(
        settings,
        with_api=os.environ.get("LOTLINE_NO_API", "0") != "1",
        demo=os.environ.get("LOTLINE_DEMO", "1") != "0",
    )
    return asyncio.run(runner.run())


if __name__ == "__main__":
    sys.exit(main())

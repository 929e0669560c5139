"""Issue 7, item 9: a short `make soak`, so the soak cannot rot between the long runs.

One minute of load from three clients on a LocalStack with two workers, a fault every 10 s (so
each kind in the rotation once: worker SIGKILL, Temporal restart, PostgreSQL fast and immediate
restart, API SIGKILL), then the soak's own reconciliation: nothing lost, nothing duplicated,
nothing left unfinished, the audit chain intact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lotline_run.soak import FAULTS

ROOT = Path(__file__).resolve().parents[2]
MIN_COMPLETED = 6  # ~15 on an idle 2-core machine; the floor leaves room for a busy one


def test_a_short_soak_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    report = tmp_path / "soak.json"
    argv = [sys.executable, "-m", "lotline_run.soak", "--minutes", "1", "--fault-every", "10"]
    argv += ["--clients", "3", "--drain", "90", "--seed", "7", "--report", str(report)]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEMPORAL_ADDRESS")}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    assert report.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["lost"] == [] and result["duplicated"] == [], result
    assert result["unfinished"] == [] and result["anomalies"] == [], result
    assert result["audit"].startswith("intact"), result
    assert done.returncode == 0 and result["ok"], done.stdout[-3000:]
    assert result["faults"] == {kind: 1 for kind in FAULTS}, result["faults"]
    assert result["processes_completed"] == result["processes_started"] >= MIN_COMPLETED, result
    felt = {k: n for k, n in result["requests"].items() if not k.startswith(("2", "4"))}
    assert sum(felt.values()) > 0, result["requests"]  # the clients lived through the faults

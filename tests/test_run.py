"""`make run` end to end: embedded PostgreSQL and Temporal, demo data, worker, web app; Ctrl-C
stops everything; a second run finds the same data; `verify-audit` checks the trail."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from lotline_run.embedded import port_open, postgres_running, temporal_command
from lotline_run.runner import url_host
from lotline_run.stack import free_port

ROOT = Path(__file__).resolve().parent.parent
READY = "Ctrl-C stops everything."


@pytest.fixture
def run_env() -> Iterator[dict[str, str]]:
    data_dir = Path(tempfile.mkdtemp(prefix="lotline-run-"))
    data_dir.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEMPORAL_ADDRESS")}
    env.update(
        LOTLINE_DATA_DIR=str(data_dir),
        LOTLINE_PORT=str(free_port()),
        LOTLINE_TEMPORAL_PORT=str(free_port()),
        LOTLINE_TEMPORAL_UI_PORT=str(free_port()),
        LOTLINE_DEMO="1",
        LOTLINE_NO_API="0",
    )
    yield env
    shutil.rmtree(data_dir, ignore_errors=True)


def start_runner(env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "lotline_run"], cwd=ROOT, env=env, stdout=sink, stderr=sink
        )
    deadline = time.monotonic() + 150
    while READY not in out.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the runner did not come up:\n{out.read_text()}")
        time.sleep(0.3)
    return process


def stop_runner(process: subprocess.Popen[bytes], out: Path) -> str:
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=90) == 0, out.read_text()
    return out.read_text()


def open_tasks(data_dir: Path) -> int:
    dsn = f"host={data_dir / 'pg'} user=postgres dbname=lotline"
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM task WHERE status = 'open'").fetchone()
    return int(row[0]) if row else 0


def wait_for_open_tasks(data_dir: Path, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while open_tasks(data_dir) < count:
        assert time.monotonic() < deadline, "the demo processes opened no tasks"
        time.sleep(0.3)


def test_make_run_starts_everything_and_stops_cleanly(run_env: dict[str, str]) -> None:
    data_dir = Path(run_env["LOTLINE_DATA_DIR"])
    out = data_dir / "runner.out"
    process = start_runner(run_env, out)
    base = f"http://127.0.0.1:{run_env['LOTLINE_PORT']}"
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    # three approvals, the demo change's triage, the approval of the purchase the demo customer
    # order needs, the approval of the demo purchase, the demo shipment's pick, and the
    # investigation of the demo nonconformance
    wait_for_open_tasks(data_dir, 8)
    tasks = open_tasks(data_dir)
    first = stop_runner(process, out)
    assert "demo data loaded" in first and "apr-demo-0001" in first and "cr-demo-0001" in first
    assert "co-demo-0001" in first and "po-demo-0001" in first and "sh-demo-0001" in first
    assert "nc-demo-0001" in first
    assert not postgres_running(data_dir / "pg")
    assert not port_open("127.0.0.1", int(run_env["LOTLINE_TEMPORAL_PORT"]))
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{base}/healthz", timeout=2)

    process = start_runner(run_env, out)  # the same data dir: same database, same workflows
    assert open_tasks(data_dir) == tasks
    second = stop_runner(process, out)
    assert "demo data loaded" not in second and "Demo inbox" not in second

    verified = subprocess.run(
        [sys.executable, "-m", "lotline_run", "verify-audit"],
        cwd=ROOT,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "audit trail intact" in verified.stdout
    assert not postgres_running(data_dir / "pg")


def test_temporal_command_and_hosts(tmp_path: Path) -> None:
    argv = temporal_command(tmp_path, 7300, 8300, "default")
    assert argv[1:3] == ["server", "start-dev"] and "--namespace" not in argv
    assert argv[argv.index("--db-filename") + 1] == str(tmp_path / "temporal.db")
    assert temporal_command(tmp_path, 7300, 8300, "qms")[-2:] == ["--namespace", "qms"]
    assert url_host("0.0.0.0") == "127.0.0.1" and url_host("::1") == "[::1]"

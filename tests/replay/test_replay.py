"""Saved histories replayed against today's workflow code: a change that would break runs in
flight fails here (guard it with workflow.patched(), never by re-recording)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_every_workflow_has_saved_histories():
    types = set()
    for path in HISTORIES:
        events = json.loads(path.read_text())["events"]
        types.add(events[0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"])
    registered = {w.__temporal_workflow_definition.name for w in WORKFLOWS}  # type: ignore[attr-defined]
    assert registered <= types, f"no saved history for {registered - types}"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem.split("@")[0] for p in HISTORIES])
async def test_replay(path: Path):
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=pydantic_data_converter)
    workflow_id = path.stem.split("@", 1)[1]
    history = WorkflowHistory.from_json(workflow_id, path.read_text())
    await replayer.replay_workflow(history)

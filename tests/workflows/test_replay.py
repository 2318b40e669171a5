"""Histories recorded by the previous version of the reply workflows replay on this one.

`histories/*_before_fold.json` were recorded before a reply folded its local activities
(begin + first context step, store + settle + notify): 5 local activities per AgentReply then,
2 now. A workflow in flight across that deploy replays its old history on the new code; the
`begin-with-context` patch and the settle/notify fallbacks keep it deterministic.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.agent_helpers import local_activities
from workers.interceptors import worker_interceptors
from workers.registry import main_workflows

HISTORIES = Path(__file__).parent / "histories"


@pytest.mark.parametrize("name", ["agent_reply", "team_reply"])
async def test_a_history_from_before_the_fold_replays(name: str) -> None:
    recorded = (HISTORIES / f"{name}_before_fold.json").read_text()
    history = WorkflowHistory.from_json(f"{name}-before-fold", recorded)
    before = local_activities(history)
    assert "settle_agent_reply" in before and "build_reply_context" in before, before
    replayer = Replayer(
        workflows=list(main_workflows()),
        interceptors=worker_interceptors(),
        data_converter=pydantic_data_converter,
    )
    replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None, replayed.replay_failure

"""The process environment is set in one place (iaf/__init__.py) before litellm loads.

litellm fetches a model price map over the network when it is imported, unless
LITELLM_LOCAL_MODEL_COST_MAP is set by then; the machines this runs on are offline.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Fails the import of litellm when the variable is not set yet.
GUARD = """
import importlib, os, sys
class Guard:
    def find_spec(self, name, path=None, target=None):
        if name == "litellm" and os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP") != "True":
            raise SystemExit("litellm imported before LITELLM_LOCAL_MODEL_COST_MAP was set")
sys.meta_path.insert(0, Guard())
importlib.import_module(sys.argv[1])
assert "litellm" in sys.modules, "the module was expected to load litellm"
"""


@pytest.mark.parametrize("module", ["activities.llm", "workflows.agent_reply", "iaf.llm"])
def test_a_module_that_loads_litellm_gets_the_offline_price_map_first(module: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", GUARD, module],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]

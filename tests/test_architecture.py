"""The layer rules of pyproject.toml's import-linter contracts, checked on every test run.

Each contract is first checked on the real import graph, then shown to fail on a copy of the
graph with one forbidden import added, so that a contract which could never fail is caught.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import grimp
import pytest
from importlinter import configuration
from importlinter.adapters.user_options import TomlFileUserOptionReader
from importlinter.contracts.acyclic_siblings import AcyclicSiblingsContract
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.independence import IndependenceContract
from importlinter.contracts.layers import LayersContract
from importlinter.domain.contract import Contract

from iaf.workflow_calls import WORKFLOW_TYPES
from workers.registry import main_workflows

# contract id -> an import that must break it: (importer, imported)
VIOLATIONS = {
    "layers": ("iaf.settings", "api.main"),
    "api-no-activities": ("api.routes.messages", "activities.llm"),
    "routers-independent": ("api.routes.knowledge", "api.routes.rooms"),
    "workflows-no-database": ("workflows.agent_reply", "iaf.db.engine"),
    "acyclic": ("iaf.db.engine", "iaf.gdpr.service"),
}
EXTRA_VIOLATIONS = [
    ("layers", ("activities.agents_db", "workflows.agent_reply")),
    ("layers", ("api.routes.messages", "workflows.route_message")),
    ("layers", ("iaf.retrieval.store", "activities.retrieval")),
]


CONTRACT_TYPES: dict[str, type[Contract]] = {
    "layers": LayersContract,
    "forbidden": ForbiddenContract,
    "independence": IndependenceContract,
    "acyclic_siblings": AcyclicSiblingsContract,
}
configuration.configure()  # the timer and file system the contracts use, as lint-imports does
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@pytest.fixture(scope="module")
def options() -> dict[str, Any]:
    """The options as lint-imports reads them (its reader turns TOML values into strings)."""
    read = TomlFileUserOptionReader().read_options(config_filename=str(PYPROJECT))
    assert read is not None
    return {**read.session_options, "contracts": read.contracts_options}


@pytest.fixture(scope="module")
def graph(options: dict[str, Any]) -> grimp.ImportGraph:
    return grimp.build_graph(
        *options["root_packages"],
        include_external_packages=str(options.get("include_external_packages")) == "True",
        cache_dir=None,
    )


def check(options: dict[str, Any], contract_id: str, graph: grimp.ImportGraph) -> bool:
    (contract_options,) = [c for c in options["contracts"] if c["id"] == contract_id]
    session = {k: v for k, v in options.items() if k != "contracts"}
    contract = CONTRACT_TYPES[contract_options["type"]](
        name=contract_options["name"], session_options=session, contract_options=contract_options
    )
    # A check removes the contract's ignored imports from the graph it is given.
    return bool(contract.check(copy.deepcopy(graph), verbose=False).kept)


def test_every_contract_has_a_violation_that_breaks_it(options: dict[str, Any]) -> None:
    assert {c["id"] for c in options["contracts"]} == set(VIOLATIONS)


@pytest.mark.parametrize("contract_id", sorted(VIOLATIONS))
def test_the_code_keeps_the_contract(
    options: dict[str, Any], graph: grimp.ImportGraph, contract_id: str
) -> None:
    assert check(options, contract_id, graph), f"contract {contract_id!r} broken: make lint"


@pytest.mark.parametrize(
    ("contract_id", "violation"), [*VIOLATIONS.items(), *EXTRA_VIOLATIONS], ids=str
)
def test_a_forbidden_import_breaks_the_contract(
    options: dict[str, Any],
    graph: grimp.ImportGraph,
    contract_id: str,
    violation: tuple[str, str],
) -> None:
    broken = copy.deepcopy(graph)
    importer, imported = violation
    assert importer in broken.modules and imported in broken.modules
    broken.add_import(importer=importer, imported=imported, line_number=1, line_contents="x")
    assert not check(options, contract_id, broken)


def test_workflow_type_names_are_the_registered_workflows() -> None:
    """Starts go by type name; a renamed workflow class must not leave a name nobody serves."""
    assert {w.__name__ for w in main_workflows()} == WORKFLOW_TYPES

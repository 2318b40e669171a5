"""Schemathesis against the running API, signed in, every operation of its OpenAPI document.

Requests are generated from the document (valid and invalid data alike); half the time a
path parameter is a real id of the fuzzing person's own rooms, messages and colleagues, so
the requests reach past the 404s. Every answer must not be a 5xx, must have a documented
status and content type, and must match its documented schema, errors included
(`{"error": {"code", "message"}}`, api/openapi.py). `make test` sends at least
IAF_FUZZ_REQUESTS (2,000 by default) requests; `make soak` sends more.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks as openapi_checks

from tests.helpers import Person, colleague, signup

FUZZ_ADDRESS = "127.250.0.1"
FUZZ_REQUESTS = int(os.environ.get("IAF_FUZZ_REQUESTS", "2000"))
CHECKS = [
    not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]
# Streams stay open (a heartbeat every few seconds): the room's is fuzzed with random ids
# only (404s), the person's with a Last-Event-ID that is not an event id (422, before the
# stream starts). What they send is tested in tests/api/test_events.py and test_user_events.py.
STREAMING = {("GET", "/api/chat/rooms/{room_id}/events"), ("GET", "/api/events")}
# Signing out revokes the fuzzer's own token: fuzzed last, or every later request is a 401.
ENDS_SESSION = {("POST", "/api/auth/logout")}


@dataclass
class Tally:
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


async def known_ids(alice: Person) -> dict[str, list[Any]]:
    rooms = [await alice.new_room(f"fuzz {n}") for n in range(3)]
    bob = await colleague(alice, "Fuzz Colleague")
    for room in rooms:
        await alice.post(f"/api/chat/rooms/{room['id']}/members", json={"user_id": bob.id})
    messages = [await alice.say(rooms[0]["id"], f"message {n}") for n in range(3)]
    key = await alice.post("/api/auth/api-keys", json={"name": "fuzz"})
    return {
        "room_id": [r["id"] for r in rooms],
        "message_id": [m["id"] for m in messages],
        "user_id": [bob.id, alice.id],
        "key_id": [key.json()["id"]],
    }


def runner(
    operation: Any,
    examples: int,
    base_url: str,
    headers: dict[str, str],
    ids: dict[str, list[Any]],
    chooser: random.Random,
    tally: Tally,
) -> Any:
    """A Hypothesis test of one operation: valid and invalid requests, each validated."""
    strategy = operation.as_strategy(generation_mode=GenerationMode.POSITIVE) | (
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
    )
    streaming = (operation.method.upper(), operation.path) in STREAMING

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=strategy)
    def run(case: Any) -> None:
        for name in case.path_parameters or {}:
            if name in ids and not streaming and chooser.random() < 0.5:
                case.path_parameters[name] = chooser.choice(ids[name])
        sent = {**headers, "Last-Event-ID": "not-an-id"} if streaming else headers
        response = case.call(base_url=base_url, headers=sent, timeout=60)
        tally.requests += 1
        tally.statuses[response.status_code] = tally.statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS, headers=sent)

    return run


def fuzz(base_url: str, document: dict[str, Any], token: str, ids: dict[str, list[Any]]) -> Tally:
    schema = schemathesis.openapi.from_dict(document)
    operations = sorted(
        (result.ok() for result in schema.get_all_operations()),
        key=lambda op: (op.method.upper(), op.path) in ENDS_SESSION,
    )
    per_operation = math.ceil(FUZZ_REQUESTS * 1.5 / len(operations))
    tally = Tally()
    # Through the trusted local proxy as a client address of its own: per-address limits
    # (sign-in, invitation look-ups) the fuzzer exhausts are not the other tests' budget.
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": FUZZ_ADDRESS}
    chooser = random.Random(20261209)
    for operation in operations:
        run = runner(operation, per_operation, base_url, headers, ids, chooser, tally)
        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # one per operation is enough to report
            tally.failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:800]}")
    return tally


async def test_every_operation_answers_as_documented(client, api_url: str) -> None:
    alice = await signup(client, "Fuzz Person")
    ids = await known_ids(alice)
    document = (await client.get("/openapi.json")).json()
    tally = await asyncio.to_thread(fuzz, api_url, document, alice.token, ids)
    print(f"fuzzed {tally.requests} requests over {len(document['paths'])} paths: {tally.statuses}")
    assert not tally.failures, "\n\n".join(tally.failures)
    assert tally.requests >= FUZZ_REQUESTS
    assert not any(status >= 500 for status in tally.statuses)
    # Signed in all along: the 401s are the generated requests' own bad credentials, few.
    assert tally.statuses.get(401, 0) < tally.requests / 4, tally.statuses

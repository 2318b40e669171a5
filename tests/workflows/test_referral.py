"""The Referral workflow on the time-skipping test server: one grant, expiry, the monthly cap."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.invitations import InvitationActivities
from activities.ledger import LedgerActivities
from iaf.db.engine import make_engine, make_sessionmaker
from iaf.db.models import LedgerEntry, User
from iaf.db.repositories.ledger import REFERRAL_SOURCE, LedgerRepository
from iaf.db.repositories.referrals import ReferralRepository
from iaf.db.repositories.users import UserRepository
from iaf.settings import Settings
from iaf.workflow_calls import referral_workflow_id, signal_first_action
from schemas.invitations import ReferralInput, ReferralOutcome, ReferralRef
from tests.conftest import make_settings
from tests.helpers import unique_email
from tests.workers.test_crash_recovery import worker_process
from tests.workflows.test_invitation import time_skipping_env
from workflows.referral import Referral

QUEUE = "iaf-referral-ts"
REWARD = 100


@dataclass
class CrashOnce:
    """A grant that books the ledger entry, commits, then dies as a crashed worker would."""

    sessionmaker: async_sessionmaker[AsyncSession]
    real: LedgerActivities
    attempts: list[int] = field(default_factory=list)

    @activity.defn(name="grant_referral")
    async def grant_referral(self, ref: ReferralRef) -> ReferralOutcome:
        self.attempts.append(activity.info().attempt)
        if activity.info().attempt == 1:
            async with self.sessionmaker() as session:
                referral = await ReferralRepository(session).get(ref.referral_id)
                assert referral is not None
                await LedgerRepository(session).append(
                    referral.referrer_id,
                    referral.reward_credits,
                    "referral",
                    REFERRAL_SOURCE,
                    str(referral.id),
                )
                await session.commit()
            raise RuntimeError("worker lost after the ledger insert committed")
        return await self.real.grant_referral(ref)


@dataclass
class Rig:
    env: WorkflowEnvironment
    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings

    async def user(self, name: str) -> User:
        async with self.sessionmaker() as session:
            users = UserRepository(session)
            org = await users.create_org(f"{name}'s org")
            user = await users.create(org.id, unique_email("ref"), name, "x", "org_admin")
            await session.commit()
        return user

    async def referral(self, referrer: User, deadline_days: float = 30) -> uuid.UUID:
        referred = await self.user("Referred")
        async with self.sessionmaker() as session:
            deadline = datetime.now(UTC) + timedelta(days=deadline_days)
            referral = await ReferralRepository(session).create(
                referrer.id, referred.id, None, REWARD, deadline
            )
            await session.commit()
        return referral.id

    async def act(self, referral_id: uuid.UUID) -> None:
        """What the message route does: record the first action in Postgres."""
        async with self.sessionmaker() as session:
            referral = await ReferralRepository(session).get(referral_id)
            assert referral is not None
            assert (
                await ReferralRepository(session).note_first_action(referral.referred_user_id)
                == referral_id
            )
            await session.commit()

    async def start(self, referral_id: uuid.UUID) -> WorkflowHandle[Referral, ReferralOutcome]:
        return await self.env.client.start_workflow(
            Referral.run,
            ReferralInput(referral_id=referral_id),
            id=referral_workflow_id(referral_id),
            task_queue=QUEUE,
        )

    async def status(self, referral_id: uuid.UUID) -> str:
        async with self.sessionmaker() as session:
            referral = await ReferralRepository(session).get(referral_id)
        return referral.status if referral else "gone"

    async def credits(self, user: User) -> tuple[int, int]:
        """(balance, number of referral entries) of a user."""
        async with self.sessionmaker() as session:
            balance = await LedgerRepository(session).balance(user.id)
            count = await session.scalar(
                select(func.count()).where(
                    LedgerEntry.user_id == user.id, LedgerEntry.source == REFERRAL_SOURCE
                )
            )
        return balance, int(count or 0)


@pytest.fixture
async def rig(data_dir, database_url) -> AsyncIterator[Rig]:
    engine = make_engine(database_url, 4)
    try:
        async with time_skipping_env() as env:
            target = env.client.service_client.config.target_host
            settings = make_settings(
                data_dir, database_url, target, temporal_task_queue=QUEUE, referral_monthly_cap=2
            )
            yield Rig(env, make_sessionmaker(engine), settings)
    finally:
        await engine.dispose()


def worker(rig: Rig, grant: Callable[..., Any] | None = None) -> Worker:
    database = InvitationActivities(rig.sessionmaker, rig.env.client, rig.settings)
    ledger = LedgerActivities(rig.sessionmaker, rig.settings)
    return Worker(
        rig.env.client,
        task_queue=QUEUE,
        workflows=[Referral],
        activities=[
            database.load_referral,
            database.expire_referral,
            grant or ledger.grant_referral,
        ],
    )


async def test_granted_once_despite_a_duplicate_signal_and_a_crash_after_the_ledger_commit(rig):
    alice = await rig.user("Alice Referrer")
    referral_id = await rig.referral(alice)
    crash = CrashOnce(rig.sessionmaker, LedgerActivities(rig.sessionmaker, rig.settings))
    async with worker(rig, crash.grant_referral):
        handle = await rig.start(referral_id)
        await rig.act(referral_id)
        await handle.signal(Referral.first_action)
        await handle.signal(Referral.first_action)
        outcome = await handle.result()
    assert outcome.status == "granted"
    assert crash.attempts == [1, 2], "the grant was retried after the simulated crash"
    assert await rig.credits(alice) == (REWARD, 1), "one entry, exactly the reward"
    async with rig.sessionmaker() as session:
        referral = await ReferralRepository(session).get(referral_id)
    assert referral is not None and referral.status == "granted" and referral.decided_at is not None


async def test_no_grant_after_the_deadline_and_a_late_action_changes_nothing(rig):
    alice = await rig.user("Alice")
    referral_id = await rig.referral(alice)
    async with worker(rig):
        handle = await rig.start(referral_id)
        outcome = await handle.result()  # the test server skips the 30 days
        assert outcome.status == "expired"
        async with rig.sessionmaker() as session:
            referral = await ReferralRepository(session).get(referral_id)
            assert referral is not None
            assert (
                await ReferralRepository(session).note_first_action(referral.referred_user_id)
                is None
            )
        assert (
            await signal_first_action(
                rig.env.client, rig.settings, referral_id, referral.referred_user_id
            )
            is False
        )
    assert await rig.credits(alice) == (0, 0)


async def test_a_lost_signal_is_recovered_from_the_row_before_the_deadline(rig):
    alice = await rig.user("Alice")
    referral_id = await rig.referral(alice)
    async with worker(rig):
        handle = await rig.start(referral_id)
        await rig.act(referral_id)  # recorded in Postgres, but no signal is ever sent
        await rig.env.sleep(timedelta(days=1, minutes=1))  # the daily re-read comes round
        for _ in range(200):  # real time only: the virtual clock stays ~29 days before the deadline
            if await rig.status(referral_id) == "granted":
                break
            await asyncio.sleep(0.05)
        assert await rig.status(referral_id) == "granted"
        assert (await handle.result()).status == "granted"
    assert await rig.credits(alice) == (REWARD, 1)


async def test_an_action_on_record_at_the_deadline_is_granted_not_expired(rig):
    rig.settings = rig.settings.model_copy(update={"referral_recheck_minutes": 90 * 24 * 60.0})
    alice = await rig.user("Alice")
    referral_id = await rig.referral(alice)
    async with worker(rig):
        handle = await rig.start(referral_id)
        await rig.act(referral_id)  # no signal, and no re-read before the deadline
        assert (await handle.result()).status == "granted"
    assert await rig.credits(alice) == (REWARD, 1)


async def test_concurrent_grants_for_one_referrer_cannot_pass_the_cap(rig):
    alice = await rig.user("Alice")
    referral_ids = [await rig.referral(alice) for _ in range(4)]
    for rid in referral_ids:
        await rig.act(rid)
    ledger = LedgerActivities(rig.sessionmaker, rig.settings)
    outcomes = await asyncio.gather(
        *(
            ActivityEnvironment().run(ledger.grant_referral, ReferralRef(referral_id=rid))
            for rid in referral_ids
        )
    )
    assert sorted(o.status for o in outcomes) == ["capped", "capped", "granted", "granted"]
    assert await rig.credits(alice) == (2 * REWARD, 2)


async def test_the_monthly_cap_holds_under_concurrent_grants(rig):
    alice = await rig.user("Popular Alice")
    referral_ids = [await rig.referral(alice) for _ in range(3)]
    async with worker(rig):
        handles = [await rig.start(rid) for rid in referral_ids]
        for rid in referral_ids:
            await rig.act(rid)
        await asyncio.gather(*(h.signal(Referral.first_action) for h in handles))
        # One result() at a time: each one unlocks the test server's time skipping while it waits.
        outcomes = [await h.result() for h in handles]
    assert sorted(o.status for o in outcomes) == ["capped", "granted", "granted"]
    assert await rig.credits(alice) == (2 * REWARD, 2)


async def test_no_self_referral_and_one_referral_per_referred_user(rig):
    alice = await rig.user("Alice")
    bob = await rig.user("Bob")
    deadline = datetime.now(UTC) + timedelta(days=30)
    async with rig.sessionmaker() as session:
        with pytest.raises(IntegrityError):
            await ReferralRepository(session).create(alice.id, alice.id, None, REWARD, deadline)
    async with rig.sessionmaker() as session:
        await ReferralRepository(session).create(alice.id, bob.id, None, REWARD, deadline)
        await session.commit()
    carol = await rig.user("Carol")
    async with rig.sessionmaker() as session:
        with pytest.raises(IntegrityError):
            await ReferralRepository(session).create(carol.id, bob.id, None, REWARD, deadline)


# --- a real worker process killed during the grant ------------------------------------------


def tail(log: Path) -> str:
    return log.read_text()[-3000:]


async def wait_for_file(path: Path, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(1200):
        if await asyncio.to_thread(path.exists):
            return
        assert process.poll() is None, tail(log)
        await asyncio.sleep(0.05)
    raise AssertionError(f"the worker never reached the hold:\n{tail(log)}")


@pytest.mark.parametrize("hold", ["grant-before-commit", "grant-after-commit"])
async def test_granted_once_when_the_worker_process_is_killed_during_the_grant(
    hold: str, database_url, temporal_server, tmp_path: Path
):
    """SIGKILL the worker process while grant_referral holds its transaction open, or after
    it committed but before Temporal heard back; a fresh worker retries the activity (after
    its 30 s start-to-close timeout) and the referrer is credited exactly once."""
    queue = f"referral-crash-{uuid.uuid4().hex[:8]}"
    settings = make_settings(
        tmp_path,
        database_url,
        temporal_server.address,
        temporal_task_queue=queue,
        temporal_retrieval_task_queue=f"{queue}-retrieval",
        qdrant_path=tmp_path / "qdrant",
    )
    engine = make_engine(database_url, 2)
    client = await Client.connect(temporal_server.address, data_converter=pydantic_data_converter)
    rig = Rig(None, make_sessionmaker(engine), settings)  # type: ignore[arg-type]
    try:
        alice = await rig.user("Alice Referrer")
        referral_id = await rig.referral(alice)
        await rig.act(referral_id)
        flag, log = tmp_path / "held", tmp_path / "worker.log"
        with worker_process(
            settings, log, "tests.workers.held_worker", hold, str(flag), "--no-retrieval"
        ) as held:
            handle = await client.start_workflow(
                Referral.run,
                ReferralInput(referral_id=referral_id),
                id=referral_workflow_id(referral_id),
                task_queue=queue,
                result_type=ReferralOutcome,
            )
            await wait_for_file(flag, held, log)
            if hold == "grant-after-commit":
                assert await rig.credits(alice) == (REWARD, 1), "committed before the kill"
                assert await rig.status(referral_id) == "granted"
            os.killpg(held.pid, signal.SIGKILL)
            held.wait()
        if hold == "grant-before-commit":
            assert await rig.credits(alice) == (0, 0), "the killed transaction left nothing"
            assert await rig.status(referral_id) == "pending"
        with worker_process(settings, log, "iaf.cli", "worker", "--no-retrieval"):
            outcome = await asyncio.wait_for(handle.result(), 120)
        assert outcome.status == "granted"
        assert await rig.credits(alice) == (REWARD, 1), "one entry, exactly the reward"
        async with rig.sessionmaker() as session:
            referral = await ReferralRepository(session).get(referral_id)
        assert referral is not None and referral.status == "granted"
        assert referral.decided_at is not None
        history = await handle.fetch_history()
        attempts = [
            e.activity_task_started_event_attributes.attempt
            for e in history.events
            if e.HasField("activity_task_started_event_attributes")
        ]
        assert attempts == [2], "one grant activity, completed by its second attempt"
    finally:
        await engine.dispose()

"""Retry policies several workflows share (not a workflow): one place to tune them."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

# A database step: PostgreSQL restarts or fails over within seconds; keep trying.
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)
# SMTP outages can last: back off to every 5 minutes (each workflow bounds the whole).
MAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)

"""LLM access goes through litellm; this package adds the offline provider used by tests and the
embedded stack (litellm stays off the network: see iaf/__init__.py)."""

from iaf.llm.offline import (
    DEFAULT_MODEL,
    FAIL_MARKER,
    PROVIDER,
    OfflineFailure,
    OfflineLLM,
    compose_answer,
    register_offline_provider,
    reset_offline_state,
)

__all__ = [
    "DEFAULT_MODEL",
    "FAIL_MARKER",
    "PROVIDER",
    "OfflineFailure",
    "OfflineLLM",
    "compose_answer",
    "register_offline_provider",
    "reset_offline_state",
]

"""LLM access goes through litellm; this package adds the offline provider used by tests and the
embedded stack. Importing it sets LITELLM_LOCAL_MODEL_COST_MAP so litellm stays off the network."""

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

"""Conversations held through the OpenAI-compatible API, stored as private rooms."""

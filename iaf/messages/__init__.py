"""Editing and deleting messages, and every copy of their text that goes with them."""

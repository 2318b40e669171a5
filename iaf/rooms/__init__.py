"""Rooms and their members: the rules every way of joining a room shares."""

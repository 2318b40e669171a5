"""All SQL lives here, in repository classes built from a session."""

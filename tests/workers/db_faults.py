"""A real database error on demand: PostgreSQL refuses to store an answer that holds a marker,
and quotes the answer in its error message, as real constraint errors quote their values."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg

REFUSE_ANSWER = """
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.answer LIKE '%{marker}%' THEN
        RAISE EXCEPTION 'answer refused: %', NEW.answer;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER {name} BEFORE UPDATE ON agent_runs FOR EACH ROW EXECUTE FUNCTION {name}();
"""


@contextlib.contextmanager
def answers_refused(database_url: str, marker: str) -> Iterator[None]:
    """While inside: storing an agent's answer that contains `marker` fails (stream step)."""
    assert marker.isalnum(), "the marker is pasted into SQL"
    name = f"refuse_{marker.lower()}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(REFUSE_ANSWER.format(name=name, marker=marker))  # type: ignore[arg-type]
    try:
        yield
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"DROP TRIGGER {name} ON agent_runs")  # type: ignore[arg-type]
            conn.execute(f"DROP FUNCTION {name}()")  # type: ignore[arg-type]

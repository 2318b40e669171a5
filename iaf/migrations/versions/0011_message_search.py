"""Message search: a generated tsvector on messages (French and English stems, accents
ignored, and a lexeme naming the room) in a GIN index, the query functions, and a text search
configuration for highlighting words typed without their accents

Revision ID: 0011_message_search
Revises: 0010_credentials
Create Date: 2026-12-02 09:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011_message_search"
down_revision: str | Sequence[str] | None = "0010_credentials"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Stem first, then drop accents from the stems: the French stemmer needs the accents
# ("déplacées" and "déplacé" both stem to "déplac" only with them), people often type
# without them. No text search configuration can do it in that order (a stemmer ends the
# chain), so two functions rewrite the lexemes of a vector and of a query. Each lexeme is
# quoted again, so an accent that unaccent turns into a quote (U+02BC) cannot break out.
UNACCENT_FUNCTIONS = r"""
CREATE FUNCTION public.iaf_unaccent_tsvector(vector tsvector) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
    SELECT coalesce(string_agg(
        '''' || replace(replace(u.lexeme, '\', '\\'), '''', '''''') || ''''
        || coalesce(':' || array_to_string(u.positions, ','), ''), ' '), '')::tsvector
    FROM (
        SELECT public.unaccent('public.unaccent'::regdictionary, t.lexeme) AS lexeme, t.positions
        FROM pg_catalog.unnest(vector) AS t
    ) AS u
    WHERE u.lexeme <> ''
$fn$;

CREATE FUNCTION public.iaf_unaccent_tsquery(query tsquery) RETURNS tsquery
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
DECLARE
    source text := query::text;
    result text := '';
    position int := 1;
    ch text;
    lexeme text;
    plain text;
BEGIN
    WHILE position <= length(source) LOOP
        ch := substr(source, position, 1);
        IF ch <> '''' THEN
            result := result || ch;
            position := position + 1;
            CONTINUE;
        END IF;
        lexeme := '';
        position := position + 1;
        LOOP
            ch := substr(source, position, 1);
            EXIT WHEN ch = '';
            IF ch = '''' AND substr(source, position + 1, 1) = '''' THEN
                lexeme := lexeme || '''';
                position := position + 2;
            ELSIF ch = '''' THEN
                position := position + 1;
                EXIT;
            ELSIF ch = '\' THEN
                lexeme := lexeme || substr(source, position + 1, 1);
                position := position + 2;
            ELSE
                lexeme := lexeme || ch;
                position := position + 1;
            END IF;
        END LOOP;
        plain := public.unaccent('public.unaccent'::regdictionary, lexeme);
        IF plain = '' THEN
            plain := lexeme;
        END IF;
        result := result || '''' || replace(replace(plain, '\', '\\'), '''', '''''') || '''';
    END LOOP;
    RETURN result::tsquery;
END
$fn$;
"""

# The room is a lexeme of the vector ('r' and the room id's 32 hex digits, no position), so
# one GIN scan intersects the words with the rooms a person is in: "(words) & (r1 | r2 | ...)".
# Measured on 1,000,000 messages (bench/search.py): 4-19 ms for every query of the benchmark,
# where a GIN index over (room_id, search_vector) scanned once per room took up to 90 ms.
SEARCH_FUNCTIONS = """
CREATE FUNCTION public.iaf_room_lexeme(room uuid) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
    SELECT 'r' || pg_catalog.replace(room::text, '-', '')
$fn$;

CREATE FUNCTION public.iaf_search_vector(content text, room uuid) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
    SELECT public.iaf_unaccent_tsvector(
        pg_catalog.to_tsvector('pg_catalog.french'::regconfig, content)
        || pg_catalog.to_tsvector('pg_catalog.english'::regconfig, content))
        || pg_catalog.array_to_tsvector(ARRAY[public.iaf_room_lexeme(room)])
$fn$;

CREATE FUNCTION public.iaf_rooms_query(rooms uuid[]) RETURNS tsquery
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
    SELECT pg_catalog.string_agg(public.iaf_room_lexeme(room), ' | ')::tsquery
    FROM pg_catalog.unnest(rooms) AS room
$fn$;

CREATE FUNCTION public.iaf_search_query(terms text) RETURNS tsquery
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
    SELECT public.iaf_unaccent_tsquery(
            pg_catalog.websearch_to_tsquery('pg_catalog.french'::regconfig, terms))
        || public.iaf_unaccent_tsquery(
            pg_catalog.websearch_to_tsquery('pg_catalog.english'::regconfig, terms))
$fn$;
"""


def upgrade() -> None:
    # unaccent is a trusted extension (PostgreSQL 13+): the database owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public")
    for functions in (UNACCENT_FUNCTIONS, SEARCH_FUNCTIONS):
        for body in functions.split("$fn$;\n"):
            if body.strip():
                op.execute(body + "$fn$")
    # Highlighting only: words typed without accents, matched against unaccented text.
    op.execute("CREATE TEXT SEARCH CONFIGURATION public.iaf_french (COPY = pg_catalog.french)")
    op.execute(
        "ALTER TEXT SEARCH CONFIGURATION public.iaf_french"
        " ALTER MAPPING FOR hword, hword_part, word WITH public.unaccent, french_stem"
    )
    # Generated from content: every edit, delete (content emptied) and erasure rewrite of a
    # message rewrites its vector in the same statement, so no removed word stays findable.
    op.execute(
        "ALTER TABLE messages ADD COLUMN search_vector tsvector"
        " GENERATED ALWAYS AS (public.iaf_search_vector(content, room_id)) STORED"
    )
    op.execute("CREATE INDEX ix_messages_search_vector ON messages USING gin (search_vector)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_messages_search_vector")
    op.execute("ALTER TABLE messages DROP COLUMN IF EXISTS search_vector")
    op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS public.iaf_french")
    for name in (
        "iaf_rooms_query(uuid[])",
        "iaf_search_query(text)",
        "iaf_search_vector(text, uuid)",
        "iaf_room_lexeme(uuid)",
        "iaf_unaccent_tsquery(tsquery)",
        "iaf_unaccent_tsvector(tsvector)",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS public.{name}")

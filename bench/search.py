"""Benchmark: GET /api/search over 1,000,000 messages, beside the raw SQL of the same search.

Data: 50 organisations, 2,000 people, 1,000 rooms, 1,000,000 messages written by
generate_series on two connections at once (French and English work words, accents
included, a long tail of rare words; a Zipf-like skew), then the GIN index built once.
The searcher is in 10 rooms (about 10,000 readable messages), like a person in a team.

Measured, one client at a time against one API process (the `make run` configuration):
- the API: HTTP, authentication, the rate-limit hit, filter resolution, membership joined in
  the query, and the highlighted fragments of each hit;
- the baseline, in the same run: the same match (the same shape and tsquery, newest first,
  20 rows) as one prepared raw SQL statement through psycopg, without highlighting;
  and the obvious statement (messages joined to the person's rooms), to show why the shape.
- what the generated tsvector costs each post: inserting 50,000 messages into the table
  beside inserting them into a copy of it without the column.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import psycopg

from bench.stack import BenchStack, bench_stack
from bench.stats import summary_ms, write_results

MESSAGES = 1_000_000
ORGS, USERS_PER_ORG, ROOMS_PER_ORG = 50, 40, 20
SEARCHER_ROOMS = 10
SAMPLES = 400
INSERT_SAMPLE = 50_000

VOCABULARY = (
    "projet équipe réunion client budget planning livraison déploiement serveur base données"
    " rapport revue code test qualité sécurité architecture interface utilisateur besoin"
    " fonctionnalité priorité sprint tâche ticket incident correctif version release"
    " migration performance latence mémoire disque réseau sauvegarde restauration accès"
    " droit rôle permission facture contrat juridique conformité données personnelles"
    " project team meeting customer budget schedule delivery deployment server database"
    " report review code test quality security architecture interface user requirement"
    " feature priority sprint task ticket incident hotfix version release migration"
    " performance latency memory disk network backup restore access right role"
    " permission invoice contract legal compliance personal data roadmap design"
    " développeur développement décision prévu réalisé terminé bloqué validé à vérifier"
    " developer development decision planned done finished blocked approved to check"
)
WORDS = VOCABULARY.split()
TAIL = 20_000  # rare words: "zq" + a number

QUERIES = [
    {"q": "projet"},
    {"q": "déploiement"},
    {"q": "deploiement serveur"},
    {"q": "meeting customer"},
    {"q": '"revue de code"'},
    {"q": "développeurs bloqués"},
    {"q": "zq1234"},
    {"q": "budget -facture"},
    {"q": "release", "sort": "relevance"},
    {"q": "has:mention"},
    {"q": "sécurité has:mention"},
    {"q": "migration in:bench-room-0"},
    {"q": "latence", "after": "2020-01-01T00:00:00Z"},
]

# The obvious statement: messages joined to the searcher's rooms, newest first.
_RAW_JOIN = """
    SELECT m.id FROM messages m
    JOIN room_members rm ON rm.room_id = m.room_id AND rm.user_id = %(user)s
    WHERE m.search_vector @@ public.iaf_search_query(%(terms)s) AND m.deleted_at IS NULL
    ORDER BY m.id DESC LIMIT 20
"""
# The API's shape (iaf/db/repositories/message_search.py): words & the person's room lexemes.
_RAW_ROOM_LEXEMES = """
    WITH readable AS MATERIALIZED (
        SELECT room_id AS id FROM room_members WHERE user_id = %(user)s
    )
    SELECT m.id FROM messages m
    WHERE m.deleted_at IS NULL AND m.room_id = ANY(ARRAY(SELECT id FROM readable))
      AND m.search_vector @@ (public.iaf_search_query(%(terms)s)
        && (SELECT public.iaf_rooms_query(array_agg(id)) FROM readable))
    ORDER BY m.id DESC LIMIT 20
"""


def _load_people(conn: psycopg.Connection[Any], searcher: str, searcher_org: str) -> None:
    conn.execute(
        "CREATE TABLE bench_rooms AS SELECT row_number() OVER () - 1 AS idx, id, org_id FROM ("
        " SELECT gen_random_uuid() AS id, o.id AS org_id FROM ("
        "  SELECT CASE WHEN g = 0 THEN %(org)s::uuid ELSE gen_random_uuid() END AS id, g"
        "  FROM generate_series(0, %(orgs)s - 1) g) o, generate_series(1, %(rooms)s) r"
        " ORDER BY o.g, r) x",
        {"org": searcher_org, "orgs": ORGS, "rooms": ROOMS_PER_ORG},
    )
    conn.execute(
        "INSERT INTO orgs (id, name) SELECT DISTINCT org_id, 'bench org' FROM bench_rooms"
        " ON CONFLICT DO NOTHING"
    )
    conn.execute(
        "INSERT INTO rooms (id, org_id, name, kind, topic, auto_route)"
        " SELECT id, org_id, 'bench-room-' || idx, 'group', '', false FROM bench_rooms"
    )
    conn.execute(
        "CREATE TABLE bench_users AS SELECT gen_random_uuid() AS id, b.org_id, u AS idx"
        " FROM (SELECT DISTINCT org_id FROM bench_rooms) b, generate_series(1, %s) u",
        (USERS_PER_ORG,),
    )
    conn.execute(
        "INSERT INTO users (id, org_id, email, name, handle, password_hash, role, status,"
        " token_version) SELECT id, org_id, id || '@bench.example', 'Bench ' || idx,"
        " 'bench-' || replace(id::text, '-', ''), 'x', 'member', 'active', 0 FROM bench_users"
    )
    # Each person is in the rooms of their organisation; the searcher in SEARCHER_ROOMS.
    conn.execute(
        "INSERT INTO room_members (room_id, user_id, role)"
        " SELECT r.id, u.id, 'member' FROM bench_rooms r JOIN bench_users u USING (org_id)"
        " WHERE (u.idx + r.idx) % 2 = 0"
    )
    conn.execute(
        "INSERT INTO room_members (room_id, user_id, role)"
        " SELECT id, %s, 'member' FROM bench_rooms WHERE org_id = %s ORDER BY idx LIMIT %s"
        " ON CONFLICT DO NOTHING",
        (searcher, searcher_org, SEARCHER_ROOMS),
    )


_INSERT_MESSAGES = """
    INSERT INTO messages (room_id, sender_user_id, content, type, metadata, created_at, routed_at)
    SELECT r.id, u.id,
        -- `s * 0` ties the aggregate to the inner query (else it would aggregate the outer).
        (SELECT string_agg(CASE WHEN random() < 0.03
                    THEN 'zq' || floor(random() * %(tail)s)::int
                    ELSE w.words[1 + s * 0 + floor(power(random(), 2) * w.n)::int] END, ' ')
           FROM generate_series(1, 5 + (g %% 20)) s),
        'text',
        CASE WHEN g %% 97 = 0 THEN jsonb_build_object('mentions',
            jsonb_build_array(jsonb_build_object('kind', 'user', 'id', %(searcher)s::text)))
        ELSE '{}'::jsonb END,
        now() - make_interval(secs => %(total)s - g), now()
    FROM generate_series(%(first)s, %(last)s) g
    CROSS JOIN (SELECT %(words)s::text[] AS words, cardinality(%(words)s::text[]) AS n) w
    JOIN bench_rooms r ON r.idx = g %% %(rooms)s
    JOIN bench_users u ON u.org_id = r.org_id AND u.idx = 1 + (g / %(rooms)s) %% %(users)s
    ORDER BY g  -- ids grow with time, rooms interleaved, as in a live instance
"""


def _insert_slice(database_url: str, searcher: str, first: int, last: int) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            _INSERT_MESSAGES,
            {
                "tail": TAIL,
                "searcher": searcher,
                "total": MESSAGES,
                "first": first,
                "last": last,
                "words": WORDS,
                "rooms": ORGS * ROOMS_PER_ORG,
                "users": USERS_PER_ORG,
            },
        )


async def load(database_url: str, searcher: str, searcher_org: str) -> dict[str, float]:
    began = time.perf_counter()
    # Client-side binding: CREATE TABLE AS takes no server-side parameters.
    with psycopg.connect(
        database_url, autocommit=True, cursor_factory=psycopg.ClientCursor
    ) as conn:
        _load_people(conn, searcher, searcher_org)
        conn.execute("DROP INDEX ix_messages_search_vector")
    half = MESSAGES // 2
    await asyncio.gather(
        asyncio.to_thread(_insert_slice, database_url, searcher, 1, half),
        asyncio.to_thread(_insert_slice, database_url, searcher, half + 1, MESSAGES),
    )
    inserted = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("CREATE INDEX ix_messages_search_vector ON messages USING gin (search_vector)")
        indexed = time.perf_counter()
        conn.execute("VACUUM ANALYZE messages")
        conn.execute("ANALYZE room_members")
        count = conn.execute("SELECT count(*) FROM messages").fetchone()[0]  # type: ignore[index]
        readable = conn.execute(
            "SELECT count(*) FROM messages m JOIN room_members rm ON rm.room_id = m.room_id"
            " AND rm.user_id = %s",
            (searcher,),
        ).fetchone()[0]  # type: ignore[index]
    return {
        "messages": count,
        "readable_by_searcher": readable,
        "insert_s": round(inserted - began, 1),
        "gin_index_s": round(indexed - inserted, 1),
    }


def measure_insert_cost(database_url: str) -> dict[str, Any]:
    """The same 50,000 rows into messages and into a copy without the generated column."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        # The same columns, identity and indexes, less the vector (and so its GIN index).
        conn.execute("CREATE TABLE bench_plain (LIKE messages INCLUDING ALL)")
        conn.execute("ALTER TABLE bench_plain DROP COLUMN search_vector")
        conn.execute(
            "CREATE TABLE bench_texts AS SELECT room_id, content FROM messages LIMIT %s",
            (INSERT_SAMPLE,),
        )
        timings = {}
        for table in ("bench_plain", "messages"):
            started = time.perf_counter()
            conn.execute(
                f"INSERT INTO {table} (room_id, content, type, metadata, created_at)"
                " SELECT room_id, content, 'text', '{}', now() FROM bench_texts"
            )
            timings[table] = time.perf_counter() - started
        conn.execute("DELETE FROM messages WHERE id > %s", (MESSAGES,))
    plain, with_vector = timings["bench_plain"], timings["messages"]
    return {
        "rows": INSERT_SAMPLE,
        "without_vector_us_per_row": round(plain / INSERT_SAMPLE * 1e6, 1),
        "with_vector_and_gin_us_per_row": round(with_vector / INSERT_SAMPLE * 1e6, 1),
    }


async def measure_api(base: str, token: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    per_query: dict[str, list[float]] = {}
    hits: dict[str, int] = {}
    async with aiohttp.ClientSession() as http:
        for i in range(SAMPLES + len(QUERIES)):
            params = QUERIES[i % len(QUERIES)]
            started = time.perf_counter()
            async with http.get(f"{base}/api/search", params=params, headers=headers) as response:
                body = await response.json()
                assert response.status == 200, body
            elapsed = time.perf_counter() - started
            if i >= len(QUERIES):  # the first round warms the caches
                latencies.append(elapsed)
                per_query.setdefault(str(params), []).append(elapsed)
            hits[str(params)] = len(body["items"])
    return {
        **summary_ms(latencies),
        "per_query": {
            key: {**summary_ms(values), "hits": hits[key]} for key, values in per_query.items()
        },
    }


def measure_raw(
    database_url: str, searcher: str, statement: str, samples: int = SAMPLES
) -> dict[str, Any]:
    """The word-only queries as one prepared statement each, no HTTP, no highlighting."""
    terms = [q["q"] for q in QUERIES if ":" not in q["q"] and len(q) == 1]
    latencies: list[float] = []
    per_query: dict[str, list[float]] = {}
    with psycopg.connect(database_url, autocommit=True, prepare_threshold=0) as conn:
        for i in range(samples + len(terms)):
            term = terms[i % len(terms)]
            started = time.perf_counter()
            conn.execute(statement, {"user": searcher, "terms": term}).fetchall()
            if i >= len(terms):
                latencies.append(time.perf_counter() - started)
                per_query.setdefault(term, []).append(time.perf_counter() - started)
    return {
        **summary_ms(latencies),
        "per_query_p50_ms": {k: summary_ms(v)["p50_ms"] for k, v in per_query.items()},
    }


async def _signup(base: str) -> tuple[str, str, str]:
    async with aiohttp.ClientSession() as http:
        body = {
            "email": f"searcher-{uuid.uuid4().hex[:8]}@example.com",
            "password": "bench password",
            "name": "Searcher",
        }
        async with http.post(f"{base}/api/auth/signup", json=body) as response:
            data = await response.json()
    return data["access_token"], data["user"]["id"], data["user"]["org_id"]


async def run(stack: BenchStack) -> dict[str, Any]:
    base = stack.api()
    token, searcher, org = await _signup(base)
    results: dict[str, Any] = {"data": await load(stack.database_url, searcher, org)}
    print("loaded", results["data"], flush=True)
    results["baseline_raw_sql"] = await asyncio.to_thread(
        measure_raw, stack.database_url, searcher, _RAW_ROOM_LEXEMES
    )
    # Seconds per query: three rounds of the word queries are enough to show why not.
    results["raw_sql_plain_join"] = await asyncio.to_thread(
        measure_raw, stack.database_url, searcher, _RAW_JOIN, 3 * 8
    )
    api = await measure_api(base, token)
    api["ratio_to_raw_sql_p50"] = round(api["p50_ms"] / results["baseline_raw_sql"]["p50_ms"], 2)
    results["api_search"] = api
    results["post_cost"] = await asyncio.to_thread(measure_insert_cost, stack.database_url)
    return results


def main() -> None:
    with bench_stack(SEARCHES_PER_MINUTE="1000000") as stack:
        results = asyncio.run(run(stack))
    path = write_results("search", results)
    raw, api = results["baseline_raw_sql"], results["api_search"]
    print(f"data: {results['data']}")
    join = results["raw_sql_plain_join"]
    print(f"raw SQL (baseline): p50 {raw['p50_ms']} ms  p99 {raw['p99_ms']} ms")
    print(f"raw SQL, plain join: p50 {join['p50_ms']} ms  p99 {join['p99_ms']} ms")
    print(
        f"GET /api/search:    p50 {api['p50_ms']} ms  p99 {api['p99_ms']} ms"
        f"  ({api['ratio_to_raw_sql_p50']}x baseline)"
    )
    for query, figures in api["per_query"].items():
        print(f"  {query}: p50 {figures['p50_ms']} ms, {figures['hits']} hits")
    print(f"post cost: {results['post_cost']}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()

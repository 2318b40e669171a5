"""Sampling profiles of a running process with py-spy: where its CPU goes, by function.

`record` samples a process for some seconds into py-spy's collapsed stack format, keeping only
samples of the thread that holds the GIL: py-spy's idle detection does not work on these VMs
(threads blocked in epoll or on a queue showed as a third of the samples), and Python work
needs the GIL. Native work that releases it (torch's matrix products in the embedder) is
then missed: the embedder's thread CPU is measured apart, by psutil. `summarise` turns those stacks into the functions that hold the most samples,
inclusive (anywhere on the stack) and by own time (top of the stack), and into buckets named
after what the issue asks about (the litellm stream wrapper, token counting, JSON, the query
embedding, the Temporal SDK, the database driver).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# Bucket -> a pattern over one frame ("function (file:line)"). A sample goes to the bucket of
# the frame nearest the top of its stack that matches one (where the CPU was spent: JSON
# inside litellm counts as JSON); a frame matching several takes the first listed.
BUCKETS: list[tuple[str, re.Pattern[str]]] = [
    ("query embedding (torch)", re.compile(r"torch|sentence_transformers|transformers/")),
    ("token counting", re.compile(r"token_counter|tiktoken|count_tokens")),
    ("litellm stream wrapper", re.compile(r"litellm_core_utils/streaming|CustomStreamWrapper")),
    ("litellm other", re.compile(r"litellm/")),
    ("offline model (the LLM stand-in)", re.compile(r"iaf/llm/offline")),
    ("Qdrant Edge", re.compile(r"iaf/retrieval/edge|qdrant_edge")),
    ("database (SQLAlchemy, asyncpg)", re.compile(r"sqlalchemy|asyncpg|psycopg")),
    ("pydantic / JSON", re.compile(r"pydantic|json/|orjson")),
    ("Temporal SDK", re.compile(r"temporalio")),
    ("asyncio (socket I/O, wake-ups, scheduling)", re.compile(r"asyncio/|selectors\.py|uvloop")),
    ("threads (executor hand-offs)", re.compile(r"concurrent/futures|threading\.py|queue\.py")),
    ("our code (activities, iaf)", re.compile(r"/(activities|iaf|workflows|workers)/\w+\.py")),
]


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found


def record(pid: int, seconds: float, out: Path, rate: int = 200) -> subprocess.Popen[bytes]:
    """Start sampling `pid` for `seconds`; wait on the returned process for the file."""
    command = [py_spy(), "record", "--pid", str(pid), "--duration", str(int(seconds))]
    command += ["--rate", str(rate), "--format", "raw", "--gil", "--nonblocking"]
    command += ["--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stacks(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def summarise(path: Path, top: int = 15) -> dict[str, Any]:
    stacks = _stacks(path)
    total = sum(count for _, count in stacks) or 1
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    for frames, count in stacks:
        for frame in set(frames):
            inclusive[_short(frame)] += count
        own[_short(frames[-1])] += count
        buckets[_bucket(frames)] += count

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "buckets_percent": dict(share(buckets)),
        "top_inclusive_percent": share(inclusive),
        "top_own_percent": share(own),
    }


def _bucket(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, pattern in BUCKETS:
            if pattern.search(frame):
                return name
    return "other"


def _short(frame: str) -> str:
    """ "name (path/to/site-packages/pkg/mod.py:12)" -> "name (pkg/mod.py)"."""
    match = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
    if not match:
        return frame
    name, file = match.groups()
    for marker in ("site-packages/", "/lib/python3.11/", "/work/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{name} ({file})"

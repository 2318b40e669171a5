"""`make bench`: every benchmark, one after the other; JSON in bench/results/, tables printed."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = [
    "bench.chat",
    "bench.agents",
    "bench.knowledge",
    "bench.retrieval_quality",
    "bench.gdpr_erasure",
    "bench.web",
]


def main() -> None:
    selected = sys.argv[1:] or BENCHMARKS
    for name in selected:
        module = importlib.import_module(name if name.startswith("bench.") else f"bench.{name}")
        print(f"\n## {module.__name__}\n")
        module.main()


if __name__ == "__main__":
    main()

"""Dashboard benchmark: how long each page of a real `flowlord run` takes at 10,000 phases and
100,000 task records, beside the API route that reads the same data, in the same run.

Run: python bench/web_bench.py [--files 1000] [--records 100000] [--requests 100]
- Each page and its API peer are asked `--requests` times over one kept-alive connection.
- The ratio page/peer is what rendering HTML costs over writing JSON of the same reads (the
  overview also reads `/api/stats` and the latest alerts; a workflow page also reads versions,
  fire times and recent tasks, and draws the graph).
The machine is shared and noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_bench import PHASES_PER_FILE, quantiles, serving, timed_gets

PAIRS = (
    ("/web/", "/api/workflows"),
    ("/web/workflows/wf00042.toml", "/api/workflows/wf00042.toml"),
    ("/web/tasks", "/api/tasks?limit=50"),
    ("/web/tasks?type=s7-1", "/api/tasks?type=s7-1&limit=50"),
    ("/web/tasks/{middle}", "/api/tasks/{middle}"),
    ("/web/alerts", "/api/alerts"),
    ("/web/about", "/api/stats"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000, help="files of 10 phases each")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100)
    options = parser.parse_args()
    rows = []
    with serving(options.files, options.records) as (_, port):
        floor = quantiles(timed_gets(port, "/healthz", options.requests)[0])[0]
        middle = max(1, options.records // 2)  # a record deep in history
        for page, peer in ((p.format(middle=middle), q.format(middle=middle)) for p, q in PAIRS):
            page_ms, page_size = timed_gets(port, page, options.requests)
            peer_ms, peer_size = timed_gets(port, peer, options.requests)
            rows.append((page, quantiles(page_ms), page_size, peer, quantiles(peer_ms)[0],
                             peer_size))  # fmt: skip
    phases = options.files * PHASES_PER_FILE
    print(f"\n{phases:,} phases, {options.records:,} task records; {options.requests} requests "
          f"each over one connection; /healthz p50 {floor:.2f} ms\n")  # fmt: skip
    print(f"{'page':<30}{'p50 ms':>8}{'p95 ms':>8}{'html':>10}   {'API peer':<32}{'p50 ms':>8}"
          f"{'json':>10}{'page/peer':>11}")  # fmt: skip
    for page, (p50, p95), size, peer, peer_p50, peer_size in rows:
        print(f"{page:<30}{p50:>8.2f}{p95:>8.2f}{size:>10,}   {peer:<32}{peer_p50:>8.2f}"
              f"{peer_size:>10,}{p50 / peer_p50:>11.1f}")  # fmt: skip


if __name__ == "__main__":
    main()

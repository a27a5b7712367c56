"""The benchmark suite works end to end: a tiny ``python -m loadtest.bench --smoke`` run.

Not a measurement (speed is never asserted in tests, PERFORMANCE.md): it starts its own Redis
and ``bidroom serve``, runs B1 (2 bidders, 2 s, and its raw-Redis reference), B2 (20
watchers, and the bare websockets reference) and B5 (an opening with 3 sealed 16 KiB bids,
decrypted at once, and the bare ``cryptography`` loop), and checks the JSON it writes has the
shape the charts, docs/benchmarks.md and readers rely on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_a_smoke_run_of_the_benchmark_suite_writes_results_of_the_documented_shape(
    tmp_path: Path,
) -> None:
    out = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, "-m", "loadtest.bench", "--smoke", "--rows", "B1,B2,B5",
         "--out", str(out), "--no-charts", "--no-doc"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=170, check=False,
    )
    assert run.returncode == 0, f"bench failed:\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"
    files = list(out.glob("*.json"))
    assert len(files) == 1
    doc = json.loads(files[0].read_text(encoding="utf-8"))

    assert doc["mode"] == "smoke"
    assert doc["command"].startswith("python -m loadtest.bench")
    machine = doc["machine"]
    for key in ("cpu_model", "cores", "memory_gib", "kernel", "python", "libraries",
                "redis_server"):
        assert machine[key], key
    assert machine["libraries"]["websockets"]

    rows = {row["id"]: row for row in doc["rows"]}
    assert list(rows) == ["B1", "B2", "B5"]
    for row_id in ("B1", "B2", "B5"):
        row = rows[row_id]
        assert row["status"] == "measured", row.get("error")
        assert row["lines"] and row["series"]
        for line in row["lines"]:
            for key in ("label", "figure", "reference", "ratio", "goal", "pass", "cpu"):
                assert key in line, (row_id, key)
            assert {"server", "client"} <= set(line["cpu"])

    hot = rows["B1"]["scenarios"]["one hot room"]
    assert hot["ours"][0]["decisions_per_s"] > 0
    assert hot["ours"][0]["refused"] == 0  # every closed-loop bid was a valid undercut
    assert hot["ours"][0]["ack_latency_ms"]["n"] > 0
    assert max(step["decisions_per_s"] for step in hot["reference"]) > 0

    fanout = rows["B2"]["runs"]["20"]
    for name in ("ours", "bare"):
        step = fanout[name]["steps"][0]
        assert step["completeness"] == 1.0, (name, step)  # every watcher got every event
        assert step["latency_ms"]["n"] > 0
    assert fanout["ours"]["frame_bytes"] == fanout["bare"]["frame_bytes"]

    opening = rows["B5"]["detail"]
    assert opening["bids"] == 3
    assert opening["decrypt_latency_ms"]["n"] == 3  # every key answered 200 "decrypted"
    assert opening["all_decrypted_in_hall_s"] > 0 and opening["reference_s"] > 0


def test_a_smoke_run_of_the_portal_row_compares_http_with_the_same_statements(
    tmp_path: Path,
) -> None:
    """B7 with 2,000 announcements on SQLite: every query answered over HTTP and directly,
    the same number of rows both ways."""
    out = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, "-m", "loadtest.bench", "--smoke", "--rows", "B7",
         "--out", str(out), "--no-charts", "--no-doc"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=170, check=False,
    )
    assert run.returncode == 0, f"bench failed:\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"
    doc = json.loads(next(out.glob("*.json")).read_text(encoding="utf-8"))
    (row,) = doc["rows"]
    assert row["id"] == "B7" and row["status"] == "measured", row.get("error")
    (line,) = row["lines"]
    for key in ("label", "figure", "reference", "ratio", "goal", "pass", "cpu"):
        assert key in line, key
    detail = row["detail"]["sqlite"]
    assert detail["announcements"] == 2_000
    assert "next page" in detail["queries"]  # the first query has a second page
    for label, query in detail["per_query"].items():
        assert query["http_ms"]["n"] == query["direct_ms"]["n"] == 2, label
        assert query["rows_http"] == min(query["rows_direct"], 20), label

"""Benchmark results for people: the markdown table, the PNG charts, docs/benchmarks.md.

``table(doc)`` renders one run as a markdown table; ``update_doc(path, doc, json_path)``
replaces what lies between ``<!-- bench:start -->`` and ``<!-- bench:end -->`` (creating the
file or the markers when missing) and leaves the rest of the page — the hand-written analysis —
alone; ``charts(doc, dir)`` draws one PNG per row (throughput, and latency percentiles where
the row has latencies) with matplotlib, when it is installed (the ``bench`` extra).

Must not import bidroom, market or web.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

__all__ = ["END", "START", "charts", "table", "update_doc"]

START = "<!-- bench:start -->"
END = "<!-- bench:end -->"


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and value < 100:
        return f"{value:g}"
    return f"{value:,.0f}" if isinstance(value, int | float) else str(value)


def _verdict(line: dict[str, Any], status: str) -> str:
    if status == "not_yet":
        return "not yet"
    if status == "error":
        return "error"
    if line.get("pass") is None:
        return "—"
    return "pass" if line["pass"] else "**FAIL**"


def _cpu(line: dict[str, Any]) -> str:
    cpu = line.get("cpu")
    if not cpu:
        return "—"
    parts = [f"{k} {v:.0f}%" for k, v in cpu.items() if k in ("server", "redis", "client")]
    return ", ".join(parts)


def table(doc: dict[str, Any]) -> str:
    """The run as a markdown table (one line per figure), with date, machine and command."""
    machine = doc["machine"]
    out = [
        f"Run {doc['started']} ({doc['mode']}, {doc['seconds']:.0f} s) on {machine['cpu_model']}, "
        f"{machine['cores']} cores, {machine['memory_gib']} GiB, Linux {machine['kernel']}, "
        f"Python {machine['python']}; server + Redis pinned to CPU "
        f"{machine['server_cpus'] or 'any'}, load generator to CPU "
        f"{machine['client_cpus'] or 'any'}; server source: "
        f"{machine.get('server_src') or 'work tree'} (repository at "
        f"{machine.get('commit') or '?'}).",
        "",
        f"Command: `{doc['command']}`",
        "",
        "| row | our figure | reference (same run) | ratio | goal | result | CPU (% of a core) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in doc["rows"]:
        for line in row.get("lines", []):
            out.append(
                f"| {line['label']} | {line.get('figure_text', _num(line.get('figure')))} | "
                f"{line.get('reference_text', _num(line.get('reference')))} | "
                f"{line.get('ratio_text') or _num(line.get('ratio'))} | {line.get('goal', '')} | "
                f"{_verdict(line, row.get('status', ''))} | {_cpu(line)} |")
    loads = [f"{row['id']} {row['loadavg_1m'][0]:g}→{row['loadavg_1m'][1]:g}"
             for row in doc["rows"] if row.get("loadavg_1m") and row.get("status") != "not_yet"]
    if loads:
        out.append("")
        out.append("Machine load during the run (1-minute load average before→after each row; "
                   "the machine has 2 cores and is shared): " + ", ".join(loads) + ".")
    if doc.get("charts"):
        out.append("")
        out.append("Charts: " + ", ".join(f"[{Path(c).stem}](benchmarks/{Path(c).name})"
                                          for c in doc["charts"]))
    return "\n".join(out)


def update_doc(path: Path, doc: dict[str, Any], json_path: Path) -> None:
    """Regenerate the table between the markers of ``path``; keep everything else."""
    try:
        rel = json_path.resolve().relative_to(path.resolve().parent.parent)
    except ValueError:
        rel = json_path
    block = f"{START}\n{table(doc)}\n\nRaw results: `{rel}`\n{END}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def charts(doc: dict[str, Any], directory: Path) -> list[str]:
    """One PNG per measured row: throughput bars, and latency percentiles (p50/p90/p99)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("[bench] matplotlib is not installed (pip install -e '.[bench]'): no charts",
              file=sys.stderr)
        return []
    directory.mkdir(parents=True, exist_ok=True)
    made = []
    for row in doc["rows"]:
        series = [s for s in row.get("series", []) if s.get("throughput") is not None]
        if row.get("status") != "measured" or not series:
            continue
        has_latency = bool(row.get("latency_label")) and any(
            s.get("p99") is not None for s in series)
        fig, axes = plt.subplots(1, 2 if has_latency else 1,
                                 figsize=(12 if has_latency else 7, 4.5), squeeze=False)
        labels = [s["label"] for s in series]
        colors = ["#c0392b" if s["label"].startswith("Bidroom") or "load" in s["label"]
                  else "#7f8c8d" for s in series]
        ax = axes[0][0]
        ax.barh(labels, [s["throughput"] for s in series], color=colors)
        ax.invert_yaxis()
        ax.set_xlabel(row.get("throughput_unit", ""))
        ax.set_title(f"{row['id']}: {row['title']}", fontsize=10, loc="left")
        for i, s in enumerate(series):
            value = s["throughput"]
            text = f" {value:,.0f}" if value >= 100 else f" {value:.3g}"
            ax.text(value, i, text, va="center", fontsize=8)
        ax.set_xlim(0, max(s["throughput"] for s in series) * 1.2 or 1)
        if has_latency:
            ax2 = axes[0][1]
            width = 0.25
            for k, (name, shade) in enumerate((("p50", 0.35), ("p90", 0.6), ("p99", 0.9))):
                ys = [i + (k - 1) * width for i in range(len(series))]
                ax2.barh(ys, [s.get(name) or 0 for s in series], height=width,
                         label=name, color=(0.2, 0.3, 0.6, shade))
            ax2.set_yticks(range(len(series)))
            ax2.set_yticklabels(labels)
            ax2.invert_yaxis()
            ax2.set_xlabel(row["latency_label"])
            ax2.set_xscale("symlog", linthresh=1)
            if row.get("latency_goal_ms"):
                ax2.axvline(row["latency_goal_ms"], color="#c0392b", linestyle="--",
                            linewidth=1, label=f"goal p99 {row['latency_goal_ms']:g} ms")
            ax2.legend(fontsize=8)
            ax2.set_title("latency percentiles", fontsize=10, loc="left")
        fig.text(0.01, 0.01, f"{doc['started']} · {doc['machine']['cpu_model']} · "
                             f"{doc['machine']['cores']} cores · {doc['mode']}", fontsize=7)
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        out = directory / f"{row['id'].lower()}.png"
        fig.savefig(out, dpi=110)
        plt.close(fig)
        made.append(str(out))
    return made


def main(argv: list[str] | None = None) -> int:
    """``python -m loadtest.report RESULTS.json [--charts DIR] [--doc FILE]``: redraw the
    charts and the doc table of a finished run (e.g. after changing how they look)."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("results", type=Path)
    parser.add_argument("--charts", type=Path, default=None)
    parser.add_argument("--doc", type=Path, default=None)
    args = parser.parse_args(argv)
    doc = json.loads(args.results.read_text(encoding="utf-8"))
    if args.charts is not None:
        doc["charts"] = charts(doc, args.charts)
    if args.doc is not None:
        update_doc(args.doc, doc, args.results)
    print(table(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A flame graph (SVG) from collapsed stacks, as ``py-spy record --format raw`` writes them.

    python -m loadtest.flame profile-bid.txt profile-bid.svg [--title "bid path"]

Why not py-spy's own SVG: one py-spy run gives one format, and two samplers attached at once
must both run ``--nonblocking``, which reads the stacks of a running process and returns torn
ones. The benchmark records once (blocking, accurate) in the raw format and draws the picture
here: root at the bottom, one box per frame, width proportional to samples, the full name and
share in each box's tooltip. Must not import bidroom, market or web.
"""

from __future__ import annotations

import argparse
import html
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["render"]

WIDTH = 1400
ROW = 17
FONT = 11


@dataclass
class _Node:
    name: str
    count: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def _parse(text: str) -> _Node:
    root = _Node("all")
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        if "(threading.py" in stack.split(";", 1)[0]:
            continue  # helper threads (aiosqlite's worker) are not the event loop
        node = root
        node.count += count
        for frame in stack.split(";"):
            frame = frame.strip()
            if not frame:
                continue
            child = node.children.get(frame)
            if child is None:
                child = node.children[frame] = _Node(frame)
            child.count += count
            node = child
    return root


def _depth(node: _Node) -> int:
    return 1 + max((_depth(c) for c in node.children.values()), default=0)


def _color(name: str) -> str:
    h = zlib.crc32(name.split(" (")[0].encode())
    if "bidroom/" in name or "web/" in name or "market/" in name:
        return f"rgb({200 + h % 55},{90 + h % 70},{40 + h % 40})"
    return f"rgb({205 + h % 50},{150 + h % 80},{50 + h % 50})"


def render(text: str, title: str = "") -> str:
    """The SVG of the collapsed stacks in ``text``."""
    root = _parse(text)
    total = max(1, root.count)
    depth = _depth(root)
    height = (depth + 2) * ROW + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'font-family="monospace" font-size="{FONT}">',
           '<rect width="100%" height="100%" fill="#fafafa"/>',
           f'<text x="8" y="18" font-size="14">{html.escape(title)} — {total} samples</text>']

    def draw(node: _Node, x: float, level: int) -> None:
        width = WIDTH * node.count / total
        if width < 0.3:
            return
        y = height - (level + 1) * ROW - 4
        share = 100 * node.count / total
        label = html.escape(f"{node.name} — {node.count} samples, {share:.1f} %")
        out.append(f'<g><title>{label}</title><rect x="{x:.2f}" y="{y}" width="{width:.2f}" '
                   f'height="{ROW - 1}" fill="{_color(node.name)}" rx="2"/>')
        chars = int(width / (FONT * 0.62))
        if chars >= 4:
            name = node.name if len(node.name) <= chars else node.name[: chars - 1] + "…"
            out.append(f'<text x="{x + 3:.2f}" y="{y + ROW - 5}">{html.escape(name)}</text>')
        out.append("</g>")
        cx = x
        for child in sorted(node.children.values(), key=lambda c: c.name):
            draw(child, cx, level + 1)
            cx += WIDTH * child.count / total

    draw(root, 0.0, 0)
    out.append("</svg>")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", type=Path)
    parser.add_argument("svg", type=Path)
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    args.svg.write_text(render(args.raw.read_text(encoding="utf-8", errors="replace"),
                               args.title or args.raw.stem), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

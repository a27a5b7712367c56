"""Summarise a py-spy profile in collapsed-stack form (``py-spy record --format raw``).

    python -m loadtest.profsum docs/benchmarks/profile-bid.txt [--top 25] [--match web/ws.py]

Prints the functions with the most samples on top of the stack (self time) and the most samples
anywhere in the stack (inclusive time), as percentages of the event-loop thread's samples
(py-spy leaves out idle samples: a thread waiting in a system call).
``loadtest.bench --profile`` writes the raw file next
to the SVG flame graph; docs/benchmarks.md quotes these summaries.
Must not import bidroom, market or web.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

__all__ = ["summarise"]



def _short(frame: str) -> str:
    """``func (path/to/module.py:123)`` -> ``func (module.py)``; line numbers dropped."""
    match = re.match(r"(.*?) \((.*?)(?::\d+)?\)$", frame.strip())
    if not match:
        return frame.strip()
    name, path = match.groups()
    parts = path.split("/")
    tail = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{name} ({tail})"


def summarise(path: Path, top: int = 25, match: str | None = None,
              all_threads: bool = False) -> str:
    """Self and inclusive shares of the samples; by default of the main (event-loop) thread
    only: helper threads (aiosqlite's worker polls its queue) would drown the picture."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    other_threads = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        if not all_threads and "(threading.py)" in frames[0]:
            other_threads += count
            continue
        total += count
        leaf = frames[-1]
        own[leaf] += count
        for frame in set(frames):
            incl[frame] += count
    if not total:
        return f"{path}: no samples"
    out = [f"{path}: {total} samples of the event-loop thread ({other_threads} of helper "
           "threads left out); 'Runner.run' on top = inside uvloop's C code (socket I/O, "
           "callbacks)", "", "self time (top of stack):"]
    for frame, count in own.most_common(top):
        out.append(f"  {100 * count / total:5.1f} %  {frame}")
    out += ["", "inclusive time:"]
    shown = 0
    for frame, count in incl.most_common():
        if match and match not in frame:
            continue
        out.append(f"  {100 * count / total:5.1f} %  {frame}")
        shown += 1
        if shown >= top:
            break
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default=None, help="only inclusive frames containing this")
    parser.add_argument("--all-threads", action="store_true")
    args = parser.parse_args(argv)
    print(summarise(args.path, args.top, args.match, args.all_threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())

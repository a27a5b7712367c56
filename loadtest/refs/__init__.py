"""Reference servers measured in the same run as Bidroom (PERFORMANCE.md, row B2/B3).

Each runs as its own process (``python -m loadtest.refs.bare_ws --port P``), pinned by the
benchmark runner to the server's core, and prints ``ready`` when it listens.
"""

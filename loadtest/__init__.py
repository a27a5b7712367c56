"""Load tests and the benchmark suite of Bidroom (issue #5).

* ``locustfile.py`` — Locust users (suppliers, watchers, purchasers) speaking the msgpack
  WebSocket protocol; latencies go into Locust's own statistics.
* ``bench.py`` — ``python -m loadtest.bench``: rows B1–B6 of PERFORMANCE.md, each with its
  reference measured in the same run; JSON results, PNG charts, docs/benchmarks.md.
* ``refs/`` — the reference servers (a bare ``websockets`` broadcast server, python-socketio).

Must not import bidroom, market or web: everything here talks to a server over the network
only (tests/unit/test_layering.py enforces it).
"""

"""Benchmarks of every echo server in impls/table.py, with Node.js and sockperf as references.

Run ``pytest benchmarks -p no:xdist`` (``--quick`` for the CI profile, ``--placement`` to pin
server and client), then ``python3 -m benchmarks.report`` for the charts and benchmarks.md.
"""

"""Turn saved benchmark runs into charts and benchmarks.md.

    pytest benchmarks -p no:xdist --placement same-cpu --benchmark-json=same-cpu.json
    pytest benchmarks -p no:xdist --placement any --benchmark-json=any.json
    python3 -m benchmarks.report same-cpu.json any.json      # one run per placement
    python3 -m benchmarks.report                             # newest run under .benchmarks/

The parts: ``runs`` (a saved run, read; histograms merged), ``tables`` (one per catalogue
section), ``targets`` (the goals and their verdicts), ``charts`` and ``page`` (benchmarks.md).
Every implementation sits next to the references of the same run: the Node.js echo (``x node``),
socat, and for the 64 B round trip sockperf's own client and server (``x sockperf``). A result
that is missing is shown as a gap (``-`` in a table, no bar or point in a chart), never as 0.
"""

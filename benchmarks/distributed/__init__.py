"""Load from many machines: the C++ open-loop load agents as Dask tasks, one merged report.

``python -m benchmarks.distributed --help`` for the command; the README, "Load from many machines",
for the agents on other machines. The modules:
- ``agent``: what runs on a worker (the checks, and the C++ client at the common start);
- ``cluster``: the scheduler or LocalCluster, one worker per agent, clock offsets, the tasks;
- ``report``: merged HdrHistograms (percentiles are never averaged) and the report;
- ``cli``: the command.

Dask is the optional extra ``distributed``; without it, importing this package says so.
"""

from __future__ import annotations

import sys

NEEDS_DASK = (
    "benchmarks.distributed needs Dask: pip install 'echo-conformance[distributed]' "
    "(or pip install 'dask[distributed]')"
)
EXIT_UNAVAILABLE = 3

try:
    import distributed  # noqa: F401 - only to know it is there
except ImportError:
    # ``python -m benchmarks.distributed`` imports this package first, where an ImportError would
    # be a traceback; while -m locates its module, sys.argv[0] is "-m" (Python's documentation of
    # the -m option), so the command says it in one line instead.
    if sys.argv[:1] == ["-m"]:
        sys.stderr.write(f"error: {NEEDS_DASK}\n")
        raise SystemExit(EXIT_UNAVAILABLE) from None
    raise ImportError(NEEDS_DASK) from None

"""``python -m benchmarks.distributed``: see ``benchmarks.distributed.cli``."""

from __future__ import annotations

import sys

from benchmarks.distributed.cli import main

sys.exit(main())

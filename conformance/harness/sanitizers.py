"""Find a sanitizer's report in a server's stderr.

The sanitizer rows (cpp-asan, cpp-tsan) halt on their first finding, so the test that
provoked it already fails because the server died. The harness still reads the stderr of
every built-in server it stops: a report is a failure even if the process somehow went on
(an option changed, a report printed at exit), and it is shown from its first line, which a
tail of the stderr could cut off.
"""

from __future__ import annotations

MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "WARNING: ThreadSanitizer",
    "runtime error:",  # UndefinedBehaviorSanitizer: "file.cpp:LINE:COL: runtime error: ..."
)
REPORT_LIMIT = 8000  # characters shown: the finding, its stacks, usually the summary


def sanitizer_report(stderr: str) -> str | None:
    """The first sanitizer report in ``stderr``, from the start of its line; None if none."""
    found = [index for marker in MARKERS if (index := stderr.find(marker)) >= 0]
    if not found:
        return None
    start = stderr.rfind("\n", 0, min(found)) + 1
    report = stderr[start : start + REPORT_LIMIT]
    return report if len(report) < REPORT_LIMIT else report + "\n..."

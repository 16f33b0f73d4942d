"""What the exit status of ``echo-conformance`` means, and how the plugin tells the command that
the up-front check stopped the run.

PYTEST_DONT_REWRITE: the command imports this before pytest starts, so pytest must not try to
rewrite its (assert-free) code afterwards.
"""

from __future__ import annotations

import pytest

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERNAL = 4
EXIT_CODES = {
    EXIT_OK: "every MUST scenario passed (and every SHOULD, with --strict-should)",
    EXIT_FAILED: "a MUST scenario failed (or a SHOULD, with --strict-should)",
    EXIT_USAGE: "usage error: a bad option, value or expectation file",
    EXIT_UNAVAILABLE: "the server could not be started or reached (checked once, before any test)",
    EXIT_INTERNAL: "the run was interrupted, or the suite itself failed",
}
# pytest's own exit statuses, as the command reports them.
FROM_PYTEST: dict[int, int] = {
    pytest.ExitCode.OK: EXIT_OK,
    pytest.ExitCode.TESTS_FAILED: EXIT_FAILED,
    pytest.ExitCode.USAGE_ERROR: EXIT_USAGE,
    pytest.ExitCode.NO_TESTS_COLLECTED: EXIT_USAGE,  # e.g. --scenario TLS-001 --transport tcp
    pytest.ExitCode.INTERRUPTED: EXIT_INTERNAL,
    pytest.ExitCode.INTERNAL_ERROR: EXIT_INTERNAL,
}
# Set by the plugin when the up-front check stops the run (pytest reports it as a usage error).
UNAVAILABLE = pytest.StashKey[str]()

"""What the suite says about third-party echo servers, scenario by scenario, and why.

Only the verdicts other than PASS are listed (SKIP is always allowed: a --server-cmd server
declares no capabilities, so the LIFE scenarios that need one skip). Each listed verdict says
what the server does wrong and names the script in tests/evidence/ that shows it outside the
suite (``python3 tests/evidence/<script>`` exits 0 when it reproduces the defect). A verdict
that depends on a race is listed with every outcome it can have ("either"), and why.
tests/test_third_party.py runs the suite against each server and compares.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from conformance.harness.report import NON_STRICT, PASS, SKIP
from impls.table import ROOT

EVIDENCE = ROOT / "tests" / "evidence"
INETD = ROOT / "tests" / "inetd" / "run_inetd.sh"


@dataclass(frozen=True)
class Expected:
    verdicts: frozenset[str]
    why: str
    evidence: str  # a script in tests/evidence/


def expect(*verdicts: str, why: str, evidence: str) -> Expected:
    return Expected(frozenset(verdicts), why, evidence)


@dataclass(frozen=True)
class ThirdPartyServer:
    name: str
    command: str  # for --server-cmd
    programs: tuple[str, ...]  # what must be installed
    expected: dict[str, Expected] = field(default_factory=dict)
    needs_root: str = ""  # why, if it does

    def allowed(self, scenario_id: str) -> frozenset[str]:
        if scenario_id in self.expected:
            return self.expected[scenario_id].verdicts
        return frozenset({PASS, SKIP})


SOCAT_TIMING = expect(
    NON_STRICT,
    why="socat copies 8 KiB per read and sets no TCP_NODELAY: a 16 KiB echo leaves in two writes, "
    "and Nagle holds the second until the client's delayed ACK (~40 ms)",
    evidence="socat_timing_002.py",
)

SERVERS: tuple[ThirdPartyServer, ...] = (
    ThirdPartyServer(
        name="socat",
        command="socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork PIPE",
        programs=("socat",),
        expected={"TIMING-002": SOCAT_TIMING},
    ),
    ThirdPartyServer(
        name="node",
        command="node -e \"require('net').createServer(s => s.pipe(s)).listen({port}, '127.0.0.1')\"",
        programs=("node",),
        expected={},
    ),
    ThirdPartyServer(
        name="ncat",
        command="ncat -l -k 127.0.0.1 {port} --exec /bin/cat",
        programs=("ncat",),
        expected={},
    ),
    ThirdPartyServer(
        name="inetd",
        command=f"sh {INETD} {{port}}",
        programs=("inetd", "unshare"),
        expected={},
        needs_root="inetd's internal echo is moved off port 7 in a private mount namespace",
    ),
)

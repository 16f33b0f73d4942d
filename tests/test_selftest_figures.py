"""selftest.md is written from the self-test's JUnit files: counts, what did not run, times."""

from __future__ import annotations

from pathlib import Path

import pytest
from selftest_figures import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"
STEPS = [FIXTURES / "selftest_children.xml", FIXTURES / "selftest_evidence.xml"]


@pytest.fixture
def page(tmp_path: Path) -> str:
    output = tmp_path / "selftest.md"
    main([*map(str, STEPS), "--output", str(output)])
    return output.read_text()


def test_each_proof_counts_what_ran_and_what_did_not(page: str) -> None:
    assert "| mutants caught by the scenario they are aimed at | **1 / 2** | 0 | never_closes 31 s |" in page
    assert "| correct servers with no false failure | **1 / 1** | 0 |" in page
    # a server that is not installed did not run: it is neither a pass nor a failure
    assert "| third-party servers judged as tests/third_party.py records | **1 / 1** | 1 |" in page
    assert "| evidence scripts that reproduced their defect | **2 / 2** | 0 | socat_conc_005.py 40 s |" in (
        page
    )


def test_the_page_gives_the_time_of_each_step_and_lists_what_did_not_pass(page: str) -> None:
    assert "- time: 8 min 56 s (selftest_children 8 min 00 s, selftest_evidence 55 s)" in page
    assert "- run: started 2026-12-02T19:30:00" in page
    assert (
        "- `test_suite_catches_mutant[never_closes]` failed: AssertionError: not caught: never_closes.py"
        in page
    )
    assert "`test_verdicts_match_the_table[inetd]` skipped: inetd: inetd not installed" in page


def test_each_mutant_is_listed_with_its_scenario_and_bug(page: str) -> None:
    assert "| `one_recv` | FRAG-002 | echoes one recv() then closes | passed | 12.3 s |" in page


def test_a_missing_junit_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path / "absent.xml")])
    assert stopped.value.code == 2
    assert "run the self-test first (tox -e selftest)" in capsys.readouterr().err

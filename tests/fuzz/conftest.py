"""The schemathesis runs' counts (requests per test and status) at the end of the report."""

import sys


def pytest_terminal_summary(terminalreporter):
    fuzz = sys.modules.get("tests.fuzz.test_greenarrow_schemathesis")
    if fuzz is not None:
        fuzz.report(terminalreporter.write_line)

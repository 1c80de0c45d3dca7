"""Integration tests: a closing line per build-system integration, e.g.
`bazel tests: 7 passed, 0 failed, 0 skipped`, after pytest's own summary."""
import collections

_COUNTS = collections.defaultdict(collections.Counter)
_SUITES = {"test_bazel.py": "bazel"}


def pytest_runtest_logreport(report):
    suite = _SUITES.get(report.nodeid.split("::")[0].rsplit("/", 1)[-1])
    if suite is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        outcome = "failed" if report.failed else report.outcome
        _COUNTS[suite][outcome] += 1


def pytest_terminal_summary(terminalreporter):
    for suite, counts in sorted(_COUNTS.items()):
        terminalreporter.write_line(f"{suite} tests: {counts['passed']} passed, "
                                    f"{counts['failed']} failed, {counts['skipped']} skipped")

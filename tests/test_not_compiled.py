"""Official cases out of reach for a stated reason (nnbuild/conformance/not_compiled.py) still
fail, and the runner shows that reason instead of the first error."""
from nnbuild.conformance import cases as conformance_cases
from nnbuild.conformance import not_compiled, runner


def test_listed_cases_fail_with_their_reason(tmp_path):
    cases = conformance_cases.collect("node", r"^node/(test_equal_string|test_string_concat|"
                                              r"test_bernoulli_seed)$")
    assert len(cases) == 3
    sweep = runner.run(cases, str(tmp_path / "batch"), jobs=1, log=lambda _: None)
    for result in sweep.results:
        assert not result.passed
        assert result.reason == "not compiled: " + not_compiled.reason_for(result.id)
    assert "string tensors" in sweep.results[1].reason          # test_equal_string
    assert "numpy's unseeded global generator" in sweep.results[0].reason   # test_bernoulli_seed


def test_every_listed_pattern_names_official_cases():
    ids = [c.id for c in conformance_cases.collect("node")]
    for pattern, reason in not_compiled.NOT_COMPILED:
        assert reason and any(not_compiled.reason_for(i) == reason for i in ids), pattern
    assert not_compiled.reason_for("node/test_abs") is None

"""rnncourse.timing.best_time: the least time of a few runs."""

import pytest

from rnncourse import timing


def test_best_time_is_the_least_of_the_runs(monkeypatch):
    clock = iter([0.0, 5.0, 10.0, 12.0, 20.0, 23.0])  # runs of 5, 2 and 3 seconds
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    calls = []
    assert timing.best_time(lambda: calls.append(1), repeats=3) == 2.0
    assert len(calls) == 3


@pytest.mark.parametrize("repeats", [0, -1, 1.5, True, "3"])
def test_repeats_must_be_a_positive_integer(repeats):
    with pytest.raises(ValueError, match="repeats"):
        timing.best_time(lambda: None, repeats=repeats)


def test_f_must_be_callable():
    with pytest.raises(TypeError, match="function of no arguments"):
        timing.best_time(42)

import pytest

from corral.bench.stats import percentile, summarize


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile(list(map(float, range(1, 101))), 95) == pytest.approx(95.05)
    assert percentile([7.0], 95) == 7.0


def test_percentile_edges_are_min_and_max() -> None:
    data = [5.0, 1.0, 9.0]
    assert percentile(data, 0) == 1.0
    assert percentile(data, 100) == 9.0


@pytest.mark.parametrize("q", [-0.1, 100.1])
def test_percentile_rejects_out_of_range(q: float) -> None:
    with pytest.raises(ValueError, match="0..100"):
        percentile([1.0], q)


def test_empty_samples_are_an_error_not_a_zero() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError, match="no samples"):
        summarize("x", [])


def test_summarize_converts_seconds_to_milliseconds() -> None:
    s = summarize("op", [0.001, 0.002, 0.003, 0.010])
    assert s.name == "op" and s.n == 4
    assert s.p50_ms == pytest.approx(2.5)
    assert s.mean_ms == pytest.approx(4.0)
    assert s.min_ms == pytest.approx(1.0) and s.max_ms == pytest.approx(10.0)
    assert s.p95_ms == pytest.approx(8.95)
    assert s.to_dict()["p50_ms"] == pytest.approx(2.5)

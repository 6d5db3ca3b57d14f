import pytest

from corral.bench.runner import BenchConfig


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (BenchConfig(iterations=0), "--iterations"),
        (BenchConfig(idle=-1), "--idle"),
        (BenchConfig(idle_concurrency=0), "concurrency"),
        (BenchConfig(url="http://127.0.0.1:1"), "--api-key"),
        (BenchConfig(url="file:///etc/passwd", api_key="k"), "http"),
        (BenchConfig(url="127.0.0.1:3000", api_key="k"), "http"),
    ],
)
def test_bad_configs_are_refused_before_anything_starts(config: BenchConfig, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config.validate()


def test_good_configs_pass() -> None:
    BenchConfig().validate()
    BenchConfig(url="http://127.0.0.1:3000", api_key="k", idle=0, iterations=1).validate()

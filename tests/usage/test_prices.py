"""Price files: a bad one is a clear error, never a silent zero bill."""

from __future__ import annotations

import pytest

from corral.errors import CorralError
from corral.usage import PriceFileError, load_prices


@pytest.mark.parametrize("text, match", [
    ("not toml [", "not valid TOML"),
    ('name = "x"\n', r"no \[rates\] table"),
    ("[rates]\nvcpu_per_second = -1\n", "non-negative number"),
    ('[rates]\nvcpu_per_second = "cheap"\n', "non-negative number"),
    ("[rates]\nvcpu_per_second = nan\n", "non-negative number"),
    ("[rates]\nvcpu_per_second = true\n", "non-negative number"),
    ("[rates]\ngpu_per_second = 1\n", "unknown rates: gpu_per_second"),
])
def test_bad_price_files_are_refused(tmp_path, text, match):
    f = tmp_path / "prices.toml"
    f.write_text(text)
    with pytest.raises(PriceFileError, match=match):
        load_prices(f)


def test_missing_price_file_is_a_corral_error_with_a_status(tmp_path):
    with pytest.raises(PriceFileError, match="cannot read the price file") as info:
        load_prices(tmp_path / "absent.toml")
    assert isinstance(info.value, CorralError) and info.value.status == 400


def test_rates_left_out_are_zero(tmp_path):
    f = tmp_path / "prices.toml"
    f.write_text("[rates]\nvcpu_per_second = 0.5\n")
    p = load_prices(f)
    assert p.vcpu_per_second == 0.5 and p.gib_ram_per_second == 0 and p.currency == "USD"

"""Price files: per-second rates for a sandbox's reserved vCPUs and memory (TOML).

The shipped default is E2B's published usage rates (e2b-prices.toml cites its source), so `corral
usage` answers "what would this have cost on E2B". A price file may set any subset of the rates;
the others default to zero, and a bad file is a clear error, never a silent zero bill.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from corral.errors import InvalidRequest

DEFAULT_PRICE_FILE = Path(__file__).with_name("e2b-prices.toml")
_RATES = ("vcpu_per_second", "gib_ram_per_second", "paused_per_second", "egress_per_gib", "base_per_month")


class PriceFileError(InvalidRequest):
    """A price file that cannot be read or has a rate that is not a non-negative number."""


@dataclass(frozen=True)
class Prices:
    name: str
    source: str
    currency: str
    vcpu_per_second: float
    gib_ram_per_second: float
    paused_per_second: float = 0.0
    egress_per_gib: float = 0.0
    base_per_month: float = 0.0

    def running_cost(self, seconds: float, cpu_count: int, memory_mb: int) -> float:
        return seconds * (cpu_count * self.vcpu_per_second + memory_mb / 1024 * self.gib_ram_per_second)

    def as_doc(self) -> dict[str, object]:
        return {"name": self.name, "source": self.source, "currency": self.currency,
                **{k: getattr(self, k) for k in _RATES}}


def load_prices(path: Path | str | None = None) -> Prices:
    p = Path(path) if path else DEFAULT_PRICE_FILE
    try:
        doc = tomllib.loads(p.read_text())
    except OSError as exc:
        raise PriceFileError(f"cannot read the price file {p}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PriceFileError(f"the price file {p} is not valid TOML: {exc}") from None
    rates = doc.get("rates")
    if not isinstance(rates, dict):
        raise PriceFileError(f"the price file {p} has no [rates] table")
    unknown = set(rates) - set(_RATES)
    if unknown:
        raise PriceFileError(f"the price file {p} has unknown rates: {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(_RATES)})")
    values: dict[str, float] = {}
    for key in _RATES:
        v = rates.get(key, 0.0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise PriceFileError(f"the price file {p}: {key} must be a non-negative number, got {v!r}")
        values[key] = float(v)
    return Prices(name=str(doc.get("name", p.name)), source=str(doc.get("source", "")),
                  currency=str(doc.get("currency", "USD")), **values)

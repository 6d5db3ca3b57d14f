"""Usage and cost: what every sandbox ran for (running and paused seconds, reserved vCPUs and
memory, egress bytes), what the warm pools did, and the spec's §8 tables priced from a price file.
Recorded in the store by the lifecycle (through `UsageRecorder`), read by the API and the CLI."""

from corral.usage.prices import DEFAULT_PRICE_FILE, PriceFileError, Prices, load_prices
from corral.usage.recorder import UsageRecorder
from corral.usage.report import BUILTIN_GROUPS, build_report

__all__ = ["BUILTIN_GROUPS", "DEFAULT_PRICE_FILE", "PriceFileError", "Prices", "UsageRecorder", "build_report",
           "load_prices"]

"""`corral bench`: latency and density of a corral server through the official E2B SDK.

Numbers are always reported next to a floor measured in the same run (fork+exec of /bin/true, a
loopback HTTP round trip), because a 2-core VM shared with other work gives different absolute
figures every run, while ratios to the floor stay comparable.
"""

from corral.bench.report import BenchReport, render_console, render_markdown
from corral.bench.runner import BenchConfig, BenchError, run_benchmark

__all__ = ["BenchConfig", "BenchError", "BenchReport", "render_console", "render_markdown", "run_benchmark"]

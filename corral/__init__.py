"""corral: self-hosted, E2B-compatible sandboxes for untrusted code."""

__version__ = "0.1.0"

# The envd protocol version we speak; defined in the wire package, which both sides share.
from corral.wire.constants import ENVD_VERSION  # noqa: E402

__all__ = ["ENVD_VERSION", "__version__"]

"""corral: self-hosted, E2B-compatible sandboxes for untrusted code."""

__version__ = "0.1.0"

__all__ = ["ENVD_VERSION", "__version__"]


def __getattr__(name: str) -> object:   # (no typing import: it is 10 ms of a launcher's start)
    """``ENVD_VERSION``, the envd protocol version we speak, defined in the wire package, which
    both sides share; loaded on first use, so that a module deep in the package (the gVisor
    launcher, started once per create and resume) does not pay for the wire package."""
    if name == "ENVD_VERSION":
        from corral.wire.constants import ENVD_VERSION

        return ENVD_VERSION
    raise AttributeError(name)

"""corral: self-hosted, E2B-compatible sandboxes for untrusted code."""

__version__ = "0.1.0"

# The envd protocol version we speak. The SDK gates features on it (see docs/COMPATIBILITY.md).
ENVD_VERSION = "0.6.4"

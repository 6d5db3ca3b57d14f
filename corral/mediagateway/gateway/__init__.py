"""`corral gateway`: a web page where a person asks for recommendations and sees each agent's
sandboxed work (code, logs, timing), with the JSON API behind it."""

from corral.mediagateway.gateway.app import RunsQueries, create_app
from corral.mediagateway.gateway.serve import serve

__all__ = ["RunsQueries", "create_app", "serve"]

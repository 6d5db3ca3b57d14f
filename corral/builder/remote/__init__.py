"""Builds asked for over the API: the SDK's `Template.build` and the CLI's `template create`.

They send build steps and file archives, not a template directory; this package checks the
steps, keeps the uploads, turns both into a Dockerfile and build context, and runs corral's
builder on them one at a time. `TemplateBuilds` (service.py) is what the HTTP routes call.
"""

from corral.builder.remote.service import Limits, TemplateBuilds

__all__ = ["Limits", "TemplateBuilds"]

"""Templates: built root filesystems that sandboxes start from, and the store that holds them."""

from corral.templates.info import TemplateCorrupt, TemplateInfo, TemplateResources
from corral.templates.names import TemplateNameError, check_name
from corral.templates.store import (
    DEFAULT_ROOT,
    ROOT_ENV,
    Stage,
    TemplateError,
    TemplateNotFound,
    TemplateStore,
)

__all__ = [
    "DEFAULT_ROOT",
    "ROOT_ENV",
    "Stage",
    "TemplateCorrupt",
    "TemplateError",
    "TemplateInfo",
    "TemplateNameError",
    "TemplateNotFound",
    "TemplateResources",
    "TemplateStore",
    "check_name",
]

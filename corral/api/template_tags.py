"""`Sandbox.create("name:tag")`: which template a tag-qualified reference starts.

corral keeps one build of each template on disk, the latest that succeeded; the build API's
records say which build every tag points to. So a tag is honoured when it points to the build
on disk, and refused with a message that says why when it points to an older build (corral
cannot start what it no longer keeps) or does not exist. Templates not made through the build
API (`base`, an operator's `corral template build`) have one tag, `default`, as on E2B.
A reference without `:` (and anything that names no template before the `:`, such as a
snapshot) is left alone.
"""

from __future__ import annotations

from starlette.requests import Request

from corral.api.template_builds import builds_service
from corral.builder.remote.records import DEFAULT_TAG
from corral.errors import Conflict, NotFound
from corral.templates import TemplateStore


class TagNotFound(NotFound):
    """A `name:tag` whose tag the template does not have."""


class TagNotKept(Conflict):
    """A tag that points to a build corral no longer keeps."""


def resolve_template_ref(request: Request, ref: str) -> str:
    name, sep, tag = ref.rpartition(":")
    if not sep:
        return ref
    store: TemplateStore = request.app.state.templates
    if not name or not store.exists(name):
        return ref
    record = builds_service(request).records.get(name)
    if record is None:
        if tag == DEFAULT_TAG:
            return name
        raise TagNotFound(f"template '{name}' has no tag '{tag}' (it has only '{DEFAULT_TAG}')")
    target = record.tags.get(tag)
    if target is None:
        known = ", ".join(sorted(record.tags)) or "none"
        raise TagNotFound(f"template '{name}' has no tag '{tag}' (tags: {known})")
    current = record.last_ready()
    if current is None or current.build_id != target["build_id"]:
        raise TagNotKept(
            f"tag '{tag}' of template '{name}' points to build {target['build_id']}, which corral no "
            "longer keeps: only the latest successful build of a template can be started")
    return name

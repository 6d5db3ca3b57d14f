"""`Sandbox.create("name:tag")`: which build a tag-qualified reference starts.

As on E2B, a tag names one build: the build API's records say which build every tag points to.
The latest successful build of a template is the store's `name`; an older build a tag still
points to is kept under its own store name (`corral.builder.remote.kept`), and the tag starts
that. A plain `name` of an API template means `name:default`, as on E2B, when a `default` tag
exists (else the latest build, as before tags existed). A tag whose build is no longer kept is
refused with a message that says why (409), an unknown tag with the tags there are (404).
Templates not made through the build API (`base`, an operator's `corral template build`) have
one tag, `default`. A reference that names no template before the `:` (a snapshot) is left alone.
"""

from __future__ import annotations

from starlette.requests import Request

from corral.api.template_builds import builds_service
from corral.builder.remote.kept import is_kept_name, kept_name
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
        name, tag = ref, None
        if builds_service(request).records.get(name) is None:
            return ref                   # not an API template: nothing to resolve (and no disk read)
    store: TemplateStore = request.app.state.templates
    if not name or not store.exists(name) or is_kept_name(name):
        return ref
    record = builds_service(request).records.get(name)
    if record is None:
        if tag in (None, DEFAULT_TAG):
            return name
        raise TagNotFound(f"template '{name}' has no tag '{tag}' (it has only '{DEFAULT_TAG}')")
    if tag is None:
        if DEFAULT_TAG not in record.tags:
            return name                  # no build was tagged `default`: the latest one
        tag = DEFAULT_TAG
    target = record.tags.get(tag)
    if target is None:
        known = ", ".join(sorted(record.tags)) or "none"
        raise TagNotFound(f"template '{name}' has no tag '{tag}' (tags: {known})")
    current = record.last_ready()
    if current is not None and current.build_id == target["build_id"]:
        return name
    kept = kept_name(name, target["build_id"])
    if store.exists(kept):
        return kept
    raise TagNotKept(
        f"tag '{tag}' of template '{name}' points to build {target['build_id']}, which corral no "
        "longer keeps (its copy was removed or never made); build it again or move the tag")

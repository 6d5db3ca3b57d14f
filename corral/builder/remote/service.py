"""The template build API's operations, independent of HTTP: what the routes in
`corral/api/template_builds.py` call.

Template IDs are template names: the store is keyed by name, `Sandbox.create(name)` finds the
build, and the SDK only echoes the ID back. A name the API did not make (the built-in `base`,
an operator's `corral template build`) is not the API's to rebuild or delete: that is refused
rather than silently replacing a template other sandboxes depend on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from corral.errors import Conflict, Forbidden, InvalidRequest, NotFound
from corral.builder.remote.dockerfile import translate
from corral.builder.remote.jobs import BuildJob, BuildRunner, make_config
from corral.builder.remote.kept import is_kept_name, prune, remove_all
from corral.builder.remote.records import DEFAULT_TAG, Records, TemplateRecord
from corral.builder.remote.spec import BuildSpec, parse_build
from corral.builder.remote.uploads import UploadStore, require_present
from corral.builder import bases
from corral.templates.names import NAME_PATTERN, TemplateNameError, check_name
from corral.templates.store import TemplateStore

TAG_PATTERN = NAME_PATTERN
MAX_TAGS = 20


@dataclass(frozen=True)
class Limits:
    max_cpu: int
    max_memory_mb: int
    default_cpu: int = 2
    default_memory_mb: int = 1024


def split_name(text: object) -> tuple[str, str | None]:
    """`name` or `name:tag` -> (name, tag or None), both checked."""
    if not isinstance(text, str) or not text:
        raise InvalidRequest("name is required")
    name, sep, tag = text.partition(":")
    try:
        check_name(name)
    except TemplateNameError as exc:
        raise InvalidRequest(str(exc)) from None
    if sep:
        check_tag(tag)
        return name, tag
    return name, None


def check_tag(tag: object) -> str:
    if not isinstance(tag, str) or not TAG_PATTERN.fullmatch(tag):
        raise InvalidRequest(f"invalid tag {tag!r}: use 1-63 characters from a-z, 0-9, '.', '_', '-'")
    return tag


class TemplateBuilds:
    def __init__(self, store: TemplateStore, data_dir: Path, limits: Limits, *, network: bool) -> None:
        self.store = store
        root = Path(data_dir) / "template-builds"
        self.records = Records(root / "records.json")
        self.uploads = UploadStore(Path(data_dir) / "template-uploads")
        self.runner = BuildRunner(store, self.records, root / "work", network=network)
        self.limits = limits

    # -- templates -----------------------------------------------------------------------------

    def record(self, template_id: str) -> TemplateRecord:
        rec = self.records.get(template_id)
        if rec is None:
            if self.store.exists(template_id):
                raise Forbidden(f"template {template_id!r} was not made through the build API; "
                                "manage it with `corral template`")
            raise NotFound(f"template {template_id!r} not found")
        return rec

    def _resources(self, cpu: object, mem: object) -> tuple[int, int]:
        cpu = self.limits.default_cpu if cpu is None else cpu
        mem = self.limits.default_memory_mb if mem is None else mem
        for value, what, top in ((cpu, "cpuCount", self.limits.max_cpu), (mem, "memoryMB", self.limits.max_memory_mb)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidRequest(f"{what} must be a positive integer")
            if value > top:
                raise InvalidRequest(f"{what} {value} is above this server's ceiling of {top}")
        return cpu, mem   # type: ignore[return-value]

    def request(self, body: dict) -> tuple[TemplateRecord, str, list[str]]:
        """`POST /v3/templates`: register a build of `name[:tag]`; the files and steps come next."""
        name, tag = split_name(body.get("name") or body.get("alias"))
        if is_kept_name(name):
            raise InvalidRequest(f"template name {name!r} has the form corral gives the builds it keeps for "
                                 "their tags ('<name>.build-<12 hex>'); choose another name")
        extra = body.get("tags") or []
        if not isinstance(extra, list):
            raise InvalidRequest("tags must be a list of strings")
        tags = list(dict.fromkeys([t for t in ([tag] if tag else []) + [check_tag(t) for t in extra]]))
        if len(tags) > MAX_TAGS:
            raise InvalidRequest(f"at most {MAX_TAGS} tags per build")
        cpu, mem = self._resources(body.get("cpuCount"), body.get("memoryMB"))
        if self.records.get(name) is None and self.store.exists(name):
            raise Conflict(f"template {name!r} already exists and was not made through the build API; "
                           "choose another name")
        build_id = str(uuid.uuid4())
        rec = self.records.new_build(name, build_id, cpu, mem, tags or [DEFAULT_TAG])
        return rec, build_id, tags or [DEFAULT_TAG]

    def delete(self, template_id: str) -> None:
        rec = self.record(template_id)
        if any(b.status in ("waiting", "building") for b in rec.builds):
            raise Conflict(f"template {template_id!r} has a build in progress")
        if self.store.exists(template_id):
            self.store.remove(template_id)
        remove_all(self.store, rec)
        self.uploads.remove_template(template_id)
        self.records.delete(template_id)

    # -- files ---------------------------------------------------------------------------------

    def file_link(self, template_id: str, files_hash: str, base_url: str) -> dict:
        self.record(template_id)
        if self.uploads.present(template_id, files_hash):
            return {"present": True}
        expires, sig = self.uploads.sign(template_id, files_hash)
        url = f"{base_url.rstrip('/')}/templates/uploads/{template_id}/{files_hash}?expires={expires}&signature={sig}"
        return {"present": False, "url": url}

    # -- builds --------------------------------------------------------------------------------

    def _check_base(self, spec: BuildSpec) -> None:
        known = {t.name for t in self.store.list()} | {a for t in self.store.list() for a in t.aliases}
        image = spec.from_image or spec.from_template or ""
        if spec.from_template is not None and spec.from_template not in known:
            raise InvalidRequest(f"fromTemplate: no template {spec.from_template!r} on this server")
        try:
            base = bases.resolve(image, known)
        except bases.BaseImageError as exc:
            raise InvalidRequest(str(exc)) from None
        if not self.store.exists(base.template):
            raise InvalidRequest(f"{image} needs the corral template {base.template!r}, which is not built "
                                 "on this server (make template)")

    def start(self, template_id: str, build_id: str, body: object) -> None:
        rec = self.record(template_id)
        build = rec.build(build_id)
        if build is None:
            raise NotFound(f"build {build_id!r} of template {template_id!r} not found")
        if build.status != "waiting" or self.runner.job(build_id) is not None:
            raise Conflict(f"build {build_id} was already started")
        spec = parse_build(body)
        self._check_base(spec)
        require_present(self.uploads, template_id, spec.hashes)
        translation = translate(spec, build_id=build_id)
        context = self.uploads.context_dir(template_id)
        context.mkdir(parents=True, exist_ok=True)

        def config_for(dockerfile: Path):  # type: ignore[no-untyped-def]
            return make_config(template_id, dockerfile, context, build.cpu_count, build.memory_mb,
                               spec.start_cmd, spec.ready_cmd)

        self.runner.start(BuildJob(template_id, build_id), translation, config_for, spec.force)

    def status(self, template_id: str, build_id: str, offset: int, limit: int) -> dict:
        rec = self.record(template_id)
        build = rec.build(build_id)
        if build is None:
            raise NotFound(f"build {build_id!r} of template {template_id!r} not found")
        job = self.runner.job(build_id)
        doc: dict = {"templateID": template_id, "buildID": build_id, "logs": []}
        if job is None:
            doc.update(status=build.status, logEntries=[])
            if build.status == "error":
                doc["reason"] = {"message": build.reason or "build failed", "step": build.step or "finalize"}
            return doc
        status = job.status          # read before the page: a final status never misses its last lines
        doc.update(status=status, logEntries=job.page(offset, limit))
        if status == "error" and job.reason is not None:
            doc["reason"] = {k: v for k, v in job.reason.items() if v is not None}
        return doc

    # -- tags ----------------------------------------------------------------------------------

    def assign_tags(self, target: object, tags: object) -> tuple[str, list[str]]:
        name, tag = split_name(target)
        rec = self.record(name)
        if not isinstance(tags, list) or not tags:
            raise InvalidRequest("tags must be a non-empty list")
        wanted = [check_tag(t) for t in tags]
        source = rec.tags.get(tag or DEFAULT_TAG)
        if source is None:
            ready = rec.last_ready()
            if tag is not None or ready is None:
                raise NotFound(f"template {name!r} has no tag {tag or DEFAULT_TAG!r}")
            build_id = ready.build_id
        else:
            build_id = source["build_id"]
        self.records.assign_tags(name, build_id, wanted)
        prune(self.store, self.records.get(name))      # a tag that moved may leave a build untagged
        return build_id, wanted

    def remove_tags(self, name: object, tags: object) -> None:
        template, _ = split_name(name)
        self.record(template)
        if not isinstance(tags, list) or not tags:
            raise InvalidRequest("tags must be a non-empty list")
        missing = self.records.remove_tags(template, [check_tag(t) for t in tags])
        if missing:
            raise NotFound(f"template {template!r} has no tag {missing[0]!r}")
        prune(self.store, self.records.get(template))

    def close(self) -> None:
        self.runner.close()

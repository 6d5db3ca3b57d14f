"""The content catalog agents work on: the shipped synthetic one, or a user's own CSV/JSON file.

A user's file needs only titles: a JSON list of objects (or an object with `titles`), or a CSV
with a header. Columns/keys: `title` (required), `id`, `year`, `genres` (a list, or a string
split on `|` or `,`), `description`, `popularity`. Users, ratings and histories come with a full
JSON catalog only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from ..errors import ConfigError

MAX_CATALOG_BYTES = 20 * 1024 * 1024
HASH_DIMS = 32


class Title(BaseModel):
    id: str
    title: str
    year: int | None = None
    genres: list[str] = Field(default_factory=list)
    description: str = ""
    kind: str = ""
    popularity: float = 0.5


class User(BaseModel):
    id: str
    name: str = ""
    favorite_genres: list[str] = Field(default_factory=list)


class Rating(BaseModel):
    user_id: str
    title_id: str
    rating: float


class Watch(BaseModel):
    user_id: str
    title_id: str
    watched_at: str = ""
    completed: bool = True


class Catalog(BaseModel):
    titles: list[Title]
    users: list[User] = Field(default_factory=list)
    ratings: list[Rating] = Field(default_factory=list)
    watch_history: list[Watch] = Field(default_factory=list)
    references: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @property
    def genres(self) -> list[str]:
        return sorted({g for t in self.titles for g in t.genres})

    def by_id(self) -> dict[str, Title]:
        return {t.id: t for t in self.titles}

    def user(self, user_id: str) -> User | None:
        return next((u for u in self.users if u.id == user_id), None)

    def history(self, user_id: str) -> list[Watch]:
        return [w for w in self.watch_history if w.user_id == user_id]

    def user_ratings(self, user_id: str) -> list[Rating]:
        return [r for r in self.ratings if r.user_id == user_id]

    def documents(self) -> list[dict[str, Any]]:
        """The titles as the sandboxed programs receive them."""
        return [t.model_dump(include={"id", "title", "year", "genres", "description", "popularity"}) for t in self.titles]

    def embeddings(self) -> dict[str, list[float]]:
        """Content embeddings for the recommender: genre multi-hot, a year feature and hashed
        description words, unit length. Deterministic and cheap, computed here so that the
        recommendation sandbox needs no model."""
        vocab = self.genres
        return {t.id: feature_embedding(t, vocab) for t in self.titles}


def feature_embedding(title: Title, vocab: list[str]) -> list[float]:
    vec = [1.0 if g in title.genres else 0.0 for g in vocab]
    vec.append(((title.year or 2000) - 2000) / 25.0)
    buckets = [0.0] * HASH_DIMS
    for word in set(re.findall(r"[a-z]{4,}", title.description.lower())):
        buckets[int(hashlib.sha256(word.encode()).hexdigest(), 16) % HASH_DIMS] += 0.35
    vec.extend(buckets)
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [round(v / norm, 5) for v in vec]


@lru_cache(maxsize=1)
def _shipped_text() -> str:
    return resources.files("corral.mediagateway.catalog").joinpath("data/catalog.json").read_text()


def shipped_catalog() -> Catalog:
    return Catalog.model_validate_json(_shipped_text())


def _genres(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(g).strip() for g in value if str(g).strip()]
    if isinstance(value, str):
        return [g.strip() for g in re.split(r"[|,]", value) if g.strip()]
    return []


def _title_rows(rows: list[dict[str, Any]], source: str) -> list[Title]:
    titles = []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not str(row.get("title") or "").strip():
            raise ConfigError("catalog", f"{source}: entry {n} has no title")
        year = row.get("year")
        try:
            year = int(year) if year not in (None, "") else None
        except (TypeError, ValueError):
            raise ConfigError("catalog", f"{source}: entry {n} has a year that is not a number: {year!r}") from None
        popularity = row.get("popularity")
        titles.append(Title(id=str(row.get("id") or f"c{n:04d}"), title=str(row["title"]).strip(), year=year,
                            genres=_genres(row.get("genres")), description=str(row.get("description") or ""),
                            popularity=float(popularity) if popularity not in (None, "") else 0.5))
    if not titles:
        raise ConfigError("catalog", f"{source}: no titles")
    return titles


def load_catalog(path: str | Path | None = None) -> Catalog:
    """The shipped catalog, or the user's CSV/JSON file at `path`."""
    if path is None:
        return shipped_catalog()
    p = Path(path)
    if not p.is_file():
        raise ConfigError("catalog", f"{p} is not a file")
    if p.stat().st_size > MAX_CATALOG_BYTES:
        raise ConfigError("catalog", f"{p} is larger than {MAX_CATALOG_BYTES} bytes")
    text = p.read_text(encoding="utf-8-sig")
    if p.suffix.lower() == ".csv":
        return Catalog(titles=_title_rows(list(csv.DictReader(io.StringIO(text))), str(p)))
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError("catalog", f"{p}: not JSON ({exc}); use a .csv suffix for CSV") from None
    if isinstance(data, list):
        return Catalog(titles=_title_rows(data, str(p)))
    if isinstance(data, dict) and isinstance(data.get("titles"), list):
        try:
            rest = Catalog.model_validate({**data, "titles": []})
        except ValidationError as exc:
            raise ConfigError("catalog", f"{p}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None
        return rest.model_copy(update={"titles": _title_rows(data["titles"], str(p))})
    raise ConfigError("catalog", f"{p}: expected a list of titles or an object with 'titles'")

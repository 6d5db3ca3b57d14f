"""The catalog: generated deterministically, loadable from a user's CSV or JSON."""

from __future__ import annotations

import json
import math

import pytest

from corral.mediagateway import ConfigError, load_catalog
from corral.mediagateway.catalog import generate


def test_committed_catalog_is_exactly_what_the_generator_writes():
    assert generate.OUT.read_text() == generate.render()
    assert generate.render() == generate.render()


def test_shipped_catalog_has_everything_the_agents_need():
    c = load_catalog()
    assert len(c.titles) == generate.N_TITLES and len({t.title for t in c.titles}) == len(c.titles)
    assert len(c.users) == generate.N_USERS and c.ratings and c.watch_history
    ids = {t.id for t in c.titles}
    assert all(r.title_id in ids for r in c.ratings) and all(1 <= r.rating <= 5 for r in c.ratings)
    assert "stranger things" in c.references
    emb = c.embeddings()
    assert len(emb) == len(c.titles)
    assert all(math.isclose(sum(v * v for v in vec), 1.0, rel_tol=1e-3) for vec in emb.values())


def test_user_csv_catalog(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text("title,year,genres,description\nSpace Cats,2021,Science Fiction|Comedy,cats in orbit\nQuiet Lake,,Drama,\n")
    c = load_catalog(p)
    assert [t.title for t in c.titles] == ["Space Cats", "Quiet Lake"]
    assert c.titles[0].genres == ["Science Fiction", "Comedy"] and c.titles[0].year == 2021 and c.titles[1].year is None


def test_user_json_catalog_list_and_object(tmp_path):
    p = tmp_path / "mine.json"
    p.write_text(json.dumps([{"title": "A", "genres": "Horror, Thriller"}]))
    assert load_catalog(p).titles[0].genres == ["Horror", "Thriller"]
    p.write_text(json.dumps({"titles": [{"id": "x1", "title": "B"}], "users": [{"id": "me"}]}))
    c = load_catalog(p)
    assert c.titles[0].id == "x1" and c.user("me") is not None


@pytest.mark.parametrize("content,suffix", [
    ("title,year\n,2020\n", ".csv"), ("title,year\nA,soon\n", ".csv"), ("{not json", ".json"), ('{"x": 1}', ".json"),
    ("[]", ".json"),
])
def test_bad_user_catalogs_are_clear_errors(tmp_path, content, suffix):
    p = tmp_path / f"bad{suffix}"
    p.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_catalog(p)
    assert err.value.field == "catalog"


def test_missing_catalog_file(tmp_path):
    with pytest.raises(ConfigError, match="not a file"):
        load_catalog(tmp_path / "nope.json")

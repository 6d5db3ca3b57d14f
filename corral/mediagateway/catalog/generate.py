"""The shipped content catalog, generated deterministically (same seed, same bytes).

Run `python scripts/generate_catalog.py` (or `python -m corral.mediagateway.catalog.generate`) to
rewrite `data/catalog.json`; a test checks that the committed file is exactly what this produces.
Titles, descriptions, users, ratings and watch histories are synthetic; `references` maps a few
well-known titles that are *not* in the catalog to their genres and themes, so a query such as
"sci-fi like Stranger Things" has something to resolve "like X" against.
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path

SEED = 20261201
N_TITLES = 160
N_USERS = 24
OUT = Path(__file__).with_name("data") / "catalog.json"

GENRES: dict[str, dict[str, list[str]]] = {
    "Science Fiction": {
        "nouns": ["Signal", "Orbit", "Horizon", "Array", "Colony", "Drift", "Protocol", "Relay", "Echo", "Vector"],
        "themes": ["a government lab experiment gone wrong", "a signal from deep space", "time loops in a quiet town",
                   "an android who wants to be human", "a generation ship losing its way", "a portal to a parallel world",
                   "kids on bikes chasing a secret", "a rogue artificial intelligence"],
    },
    "Horror": {
        "nouns": ["Hollow", "Night", "Cellar", "Whisper", "Lantern", "Marsh", "Veil", "Crow", "Harvest", "Static"],
        "themes": ["a monster in the woods", "a haunted summer camp", "a small town hiding a dark secret",
                   "a creature from another dimension", "a cursed videotape", "missing children and strange lights"],
    },
    "Drama": {
        "nouns": ["Letters", "Winter", "Harbor", "Inheritance", "Promise", "Table", "River", "Season", "Stage", "Bridge"],
        "themes": ["a family reunited after years apart", "a teacher who changes a school", "friendship tested by loss",
                   "growing up in the 1980s", "a small town and its secrets", "a second chance at a career"],
    },
    "Comedy": {
        "nouns": ["Roommates", "Wedding", "Office", "Road Trip", "Neighbors", "Bakery", "Reunion", "Camp", "Gig", "Holiday"],
        "themes": ["a disastrous wedding weekend", "mismatched roommates", "an office that runs on chaos",
                   "a road trip that goes sideways", "a band of misfits on a mission", "a bakery at war with its rival"],
    },
    "Thriller": {
        "nouns": ["Cipher", "Witness", "Deadline", "Safehouse", "Ledger", "Getaway", "Alibi", "Blackout", "Tide", "Trace"],
        "themes": ["a conspiracy inside a government agency", "a hacker on the run", "a witness who knows too much",
                   "a heist planned to the second", "a detective chasing a ghost", "a journalist uncovering a cover-up"],
    },
    "Fantasy": {
        "nouns": ["Crown", "Dragon", "Grove", "Spellbound", "Throne", "Realm", "Rune", "Oath", "Tower", "Wyld"],
        "themes": ["a quest for a lost crown", "a young mage and a forbidden library", "dragons returning to the north",
                   "a kingdom split by a curse", "children who find a door to another world"],
    },
    "Animation": {
        "nouns": ["Paws", "Pixel", "Bubbles", "Sprout", "Rocket", "Doodle", "Cloud", "Marbles"],
        "themes": ["a robot and a girl who build a rocket", "talking animals saving their forest",
                   "a pixel hero escaping a video game", "a tiny dragon learning to fly"],
    },
    "Documentary": {
        "nouns": ["Planet", "Deep", "Makers", "Voices", "Frontier", "Archive", "Wild", "Machine"],
        "themes": ["the life of coral reefs", "the engineers behind the first computers", "wolves returning to Europe",
                   "the history of arcade games", "the race to map the ocean floor"],
    },
    "Romance": {
        "nouns": ["Summer", "Postcards", "Serenade", "Vineyard", "Starlight", "Paris", "Dance", "Letters"],
        "themes": ["two rivals falling in love", "a summer romance by the sea", "a love story told in letters",
                   "strangers stuck in an airport"],
    },
    "Crime": {
        "nouns": ["Syndicate", "Precinct", "Docks", "Verdict", "Racket", "Underworld", "Badge", "Heat"],
        "themes": ["a detective in a corrupt city", "a family running a criminal empire", "an undercover cop in too deep",
                   "a cold case reopened"],
    },
}
ADJECTIVES = ["Silent", "Last", "Hidden", "Broken", "Electric", "Distant", "Golden", "Lost", "Crimson", "Endless",
              "Upside", "Northern", "Strange", "Quiet", "Midnight", "Burning", "Secret", "Little", "Wild", "Iron"]
SETTINGS = ["in a small Indiana town", "on a remote island", "in near-future Tokyo", "in 1980s suburbia", "on a space station",
            "in a sleepy fishing village", "in a sprawling megacity", "in the Scottish highlands", "across the American west",
            "in a boarding school", "under the Arctic ice", "in a crumbling empire"]
FIRST_NAMES = ["Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kira", "Liam", "Maya",
               "Noor", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Viktor", "Wen", "Yara"]
REFERENCES = {
    "stranger things": {"genres": ["Science Fiction", "Horror", "Drama"],
                        "themes": "1980s small town kids on bikes government lab experiment parallel world monster missing children friendship"},
    "black mirror": {"genres": ["Science Fiction", "Thriller", "Drama"],
                     "themes": "near-future technology artificial intelligence dark satire society"},
    "the office": {"genres": ["Comedy"], "themes": "office chaos coworkers mockumentary"},
    "game of thrones": {"genres": ["Fantasy", "Drama"], "themes": "kingdom throne dragons war families"},
    "breaking bad": {"genres": ["Crime", "Drama", "Thriller"], "themes": "teacher criminal empire family desert"},
    "planet earth": {"genres": ["Documentary"], "themes": "nature wildlife ocean planet"},
}


def _title(rng: random.Random, genre: str, used: set[str]) -> str:
    for _ in range(100):
        noun = rng.choice(GENRES[genre]["nouns"])
        pattern = rng.randrange(4)
        name = {0: f"The {rng.choice(ADJECTIVES)} {noun}", 1: f"{rng.choice(ADJECTIVES)} {noun}",
                2: f"{noun} {rng.choice(['Rising', 'Falls', 'Protocol', 'Road', 'Station', 'Season'])}",
                3: f"The {noun} of {rng.choice(['Hawkins Lane', 'Elm Street', 'Kestrel Bay', 'Nova', 'Ashford', 'Red Hill'])}"}[pattern]
        if name not in used:
            used.add(name)
            return name
    raise RuntimeError("title space exhausted")


def build() -> dict:
    rng = random.Random(SEED)
    names = list(GENRES)
    used: set[str] = set()
    titles = []
    for i in range(N_TITLES):
        primary = names[i % len(names)]
        extra = rng.sample([g for g in names if g != primary], rng.choice([0, 1, 1, 2]))
        genres = [primary, *extra]
        theme = rng.choice(GENRES[primary]["themes"])
        second = rng.choice(GENRES[extra[0]]["themes"]) if extra else rng.choice(GENRES[primary]["themes"])
        kind = rng.choice(["series", "film"])
        description = f"A {primary.lower()} {kind} about {theme} {rng.choice(SETTINGS)}; a second thread follows {second}."
        titles.append({"id": f"t{i + 1:03d}", "title": _title(rng, primary, used), "year": rng.randint(1978, 2026),
                       "genres": genres, "kind": kind, "description": description,
                       "popularity": round(rng.uniform(0.05, 1.0), 3)})
    users, ratings, history = [], [], []
    start = date(2026, 1, 1)
    for u in range(N_USERS):
        favorites = rng.sample(names, 2)
        user_id = f"u{u + 1:02d}"
        users.append({"id": user_id, "name": FIRST_NAMES[u], "favorite_genres": favorites})
        liked = [t for t in titles if set(t["genres"]) & set(favorites)]
        others = [t for t in titles if t not in liked]
        watched = rng.sample(liked, min(12, len(liked))) + rng.sample(others, 4)
        for n, t in enumerate(watched):
            fav = bool(set(t["genres"]) & set(favorites))
            rating = max(1, min(5, round(rng.gauss(4.2 if fav else 2.4, 0.7))))
            ratings.append({"user_id": user_id, "title_id": t["id"], "rating": rating})
            history.append({"user_id": user_id, "title_id": t["id"],
                            "watched_at": (start + timedelta(days=rng.randrange(330))).isoformat(),
                            "completed": rating >= 3 or rng.random() < 0.2})
    history.sort(key=lambda h: (h["user_id"], h["watched_at"], h["title_id"]))
    return {"version": 1, "seed": SEED, "genres": names, "titles": titles, "users": users,
            "ratings": ratings, "watch_history": history, "references": REFERENCES}


def render() -> str:
    return json.dumps(build(), indent=1, sort_keys=True) + "\n"


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render())
    print(f"wrote {OUT} ({N_TITLES} titles, {N_USERS} users)")


if __name__ == "__main__":
    main()

# Discovery agent (offline template): free-text query -> ranked titles with reasons.
# Reads /data/inputs.json: query, catalog (titles), references ("like X" lookups), genre_aliases, top_k.
import json
import re

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

with open("/data/inputs.json") as f:
    inp = json.load(f)
query = inp["query"].strip()
docs = inp["catalog"]
k = int(inp.get("top_k", 10))
q = query.lower()

wanted = set()
for alias, genre in inp.get("genre_aliases", {}).items():
    if re.search(r"(?<![a-z])" + re.escape(alias) + r"(?![a-z])", q):
        wanted.add(genre)
themes = query
reference = None
like = re.search(r"\b(?:like|similar to)\s+(.+)$", q)
if like:
    name = like.group(1).strip(" .!?\"'")
    for ref, info in inp.get("references", {}).items():
        if ref in name:
            reference = ref
            wanted |= set(info["genres"])
            themes += " " + info["themes"]
print(f"query={query!r} genres={sorted(wanted)} reference={reference!r}")

texts = [f"{d['title']}. {' '.join(d['genres'])}. {d['description']}" for d in docs]
vectorizer = TfidfVectorizer(stop_words="english", ngram_range=(1, 2), sublinear_tf=True)
matrix = vectorizer.fit_transform(texts + [themes])
query_vec = matrix[len(docs)]
sims = (matrix[: len(docs)] @ query_vec.T).toarray().ravel()
if sims.max() > 0:
    sims = sims / sims.max()
terms = np.array(vectorizer.get_feature_names_out())

rows = []
for i, d in enumerate(docs):
    overlap = len(wanted & set(d["genres"])) / len(wanted) if wanted else 0.0
    score = 0.55 * sims[i] + 0.35 * overlap + 0.10 * float(d.get("popularity", 0.5))
    shared = matrix[i].multiply(query_vec).toarray().ravel()
    top_terms = [str(terms[j]) for j in np.argsort(-shared)[:3] if shared[j] > 0]
    reasons = []
    if wanted & set(d["genres"]):
        reasons.append("genres " + ", ".join(sorted(wanted & set(d["genres"]))))
    if top_terms:
        reasons.append("themes: " + ", ".join(top_terms))
    if reference:
        reasons.append(f"like {reference.title()}")
    rows.append({"id": d["id"], "title": d["title"], "score": round(float(score), 4),
                 "reason": "; ".join(reasons) or "closest text match"})
rows.sort(key=lambda r: (-r["score"], r["id"]))

with open("/output/results.json", "w") as f:
    json.dump({"items": rows[:k], "notes": [f"genres {sorted(wanted)}", f"reference {reference}"]}, f)
print(f"ranked {len(rows)} titles, kept {min(k, len(rows))}")

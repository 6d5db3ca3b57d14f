# Recommendation agent (offline template): preferences, content embeddings and watch history
# -> ranked list. Reads /data/inputs.json: user_preferences, content_embeddings, watch_history,
# candidates (earlier agents' finds), catalog, top_k.
import json

import numpy as np

with open("/data/inputs.json") as f:
    inp = json.load(f)
emb = {k: np.asarray(v, dtype=float) for k, v in inp["content_embeddings"].items()}
catalog = {d["id"]: d for d in inp["catalog"]}
prefs = inp.get("user_preferences", {})
history = inp.get("watch_history", [])
candidates = {c["id"]: float(c["score"]) for c in inp.get("candidates", [])}
k = int(inp.get("top_k", 10))
vocab = inp["genre_vocab"]

dim = len(next(iter(emb.values())))
profile = np.zeros(dim)
for g, w in prefs.get("genres", {}).items():
    if g in vocab:
        profile[vocab.index(g)] += float(w)
liked = []
for h in history:
    if h["title_id"] in emb:
        weight = (float(h.get("rating", 3)) - 3.0) / 2.0 + (0.25 if h.get("completed") else -0.25)
        profile += weight * emb[h["title_id"]]
        if weight > 0.5:
            liked.append(h["title_id"])
norm = np.linalg.norm(profile)
profile = profile / norm if norm else profile
seen = {h["title_id"] for h in history}
top_candidate = max(candidates.values()) if candidates else 1.0

rows = []
for tid, vec in emb.items():
    if tid in seen:
        continue
    affinity = float(vec @ profile)
    found = candidates.get(tid, 0.0) / (top_candidate or 1.0)
    score = 0.5 * affinity + 0.35 * found + 0.15 * float(catalog[tid].get("popularity", 0.5))
    reasons = []
    if liked:
        nearest = max(liked, key=lambda lid: float(emb[lid] @ vec))
        if float(emb[nearest] @ vec) > 0.3:
            reasons.append(f"close to {catalog[nearest]['title']}, which you rated highly")
    fav = [g for g in catalog[tid]["genres"] if prefs.get("genres", {}).get(g, 0) > 0]
    if fav:
        reasons.append("your genres: " + ", ".join(fav))
    if tid in candidates:
        reasons.append("matches your query")
    rows.append({"id": tid, "title": catalog[tid]["title"], "score": round(score, 4),
                 "reason": "; ".join(reasons) or "popular with similar viewers"})
rows.sort(key=lambda r: (-r["score"], r["id"]))
with open("/output/results.json", "w") as f:
    json.dump({"items": rows[:k], "notes": [f"profile from {len(history)} watched titles, {len(candidates)} candidates"]}, f)
print(f"scored {len(rows)} unseen titles")

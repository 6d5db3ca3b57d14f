# Search agent (offline template): vector similarity over the catalog with the offline
# embedding model the media-gateway-search template ships (search_utils.embed).
import json

import numpy as np
from search_utils import embed

with open("/data/inputs.json") as f:
    inp = json.load(f)
query = inp["query"]
docs = inp["catalog"]
k = int(inp.get("top_k", 10))

texts = [f"{d['title']}. {', '.join(d['genres'])}. {d['description']}" for d in docs]
vectors = np.asarray(embed(texts))
q = np.asarray(embed([query]))[0]
scores = vectors @ q
order = np.argsort(-scores)[:k]
rows = [{"id": docs[i]["id"], "title": docs[i]["title"], "score": round(float(scores[i]), 4),
         "reason": f"semantic similarity {float(scores[i]):.2f} to the query"} for i in order]
with open("/output/results.json", "w") as f:
    json.dump({"items": rows, "notes": [f"{len(docs)} titles embedded, {vectors.shape[1]} dimensions"]}, f)
print(f"searched {len(docs)} titles; best {rows[0]['title']!r} {rows[0]['score']}")

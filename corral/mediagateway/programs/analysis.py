# Analysis agent (offline template): a pandas report on ratings and watch history with a chart
# returned as a PNG artifact (/output/genre_ratings.png).
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

with open("/data/inputs.json") as f:
    inp = json.load(f)
titles = pd.DataFrame(inp["catalog"])
ratings = pd.DataFrame(inp["ratings"])
history = pd.DataFrame(inp["watch_history"])
if inp.get("user_id"):
    ratings = ratings[ratings.user_id == inp["user_id"]]
    history = history[history.user_id == inp["user_id"]]

rated = ratings.merge(titles, left_on="title_id", right_on="id")
by_genre = (rated.explode("genres").groupby("genres")["rating"].agg(["mean", "count"])
            .sort_values("mean", ascending=False))
per_title = rated.groupby(["title_id", "title"])["rating"].agg(["mean", "count"]).reset_index()
top = per_title[per_title["count"] >= inp.get("min_ratings", 2)].sort_values(["mean", "count"], ascending=False).head(5)
if top.empty:
    top = per_title.sort_values(["mean", "count"], ascending=False).head(5)

fig, ax = plt.subplots(figsize=(8, 4))
by_genre["mean"].plot.bar(ax=ax, color="#3b7dd8")
ax.set_ylabel("mean rating")
ax.set_title("Mean rating by genre")
fig.tight_layout()
fig.savefig("/output/genre_ratings.png", dpi=80)

report = {
    "rows": int(len(rated)),
    "genres": [{"genre": g, "mean_rating": round(float(r["mean"]), 3), "ratings": int(r["count"])} for g, r in by_genre.iterrows()],
    "top_titles": [{"id": r["title_id"], "title": r["title"], "mean_rating": round(float(r["mean"]), 3),
                    "ratings": int(r["count"])} for _, r in top.iterrows()],
    "completion_rate": round(float(history["completed"].mean()), 3) if len(history) else 0.0,
    "chart": "genre_ratings.png",
}
with open("/output/results.json", "w") as f:
    json.dump(report, f)
print(by_genre.to_string())

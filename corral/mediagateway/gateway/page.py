"""The gateway's one page: a query box, the ranked recommendations, and each agent step opened up.

Everything is inline (no CDN, no other file): the page must work on a machine with no network but
loopback, and the CSP allows nothing else. The script builds every element with `createElement`
and fills it with `textContent`: titles, reasons, code and logs come from sandboxes running
generated code, so they are data, never markup.
"""

from __future__ import annotations

_STYLE = """
:root { --bg: #f3f4f7; --card: #ffffff; --ink: #1d2330; --muted: #5d6678; --line: #dde1e8;
        --accent: #3a5bd9; --ok: #1f8a4c; --fallback: #b7791f; --error: #c53030; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
header { background: #1d2330; color: #fff; padding: 14px 24px; }
header h1 { margin: 0; font-size: 19px; font-weight: 600; }
header p { margin: 2px 0 0; color: #b9c0cf; font-size: 13px; }
main { max-width: 980px; margin: 0 auto; padding: 20px 24px 40px; }
form { display: flex; gap: 8px; flex-wrap: wrap; background: var(--card); padding: 14px;
       border: 1px solid var(--line); border-radius: 8px; }
input, select, button { font: inherit; padding: 8px 10px; border: 1px solid var(--line); border-radius: 6px; }
#query { flex: 1 1 360px; }
button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; padding: 8px 18px; }
button:disabled { opacity: .6; cursor: wait; }
#status { min-height: 22px; margin: 10px 2px; color: var(--muted); }
#status.error { color: var(--error); }
h2 { font-size: 16px; margin: 22px 0 8px; }
#results { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 6px 0; }
#results[hidden], #steps-section[hidden] { display: none; }
ol#ranking { list-style: none; margin: 0; padding: 0; counter-reset: rank; }
ol#ranking li { display: grid; grid-template-columns: 34px 1fr 120px; gap: 4px 12px; padding: 10px 16px;
                border-bottom: 1px solid var(--line); counter-increment: rank; }
ol#ranking li:last-child { border-bottom: 0; }
ol#ranking li::before { content: counter(rank); grid-row: span 2; font-weight: 700; color: var(--accent);
                        font-size: 18px; }
.title { font-weight: 600; }
.meta { color: var(--muted); font-size: 13px; }
.reason { grid-column: 2 / 4; color: var(--muted); font-size: 13px; }
.score { text-align: right; font-variant-numeric: tabular-nums; }
.bar { height: 6px; background: #e6e9f2; border-radius: 3px; margin-top: 4px; overflow: hidden; }
.bar span { display: block; height: 100%; background: var(--accent); }
#summary { color: var(--muted); font-size: 13px; margin: 6px 2px; }
details.step { background: var(--card); border: 1px solid var(--line); border-radius: 8px; margin: 8px 0; }
details.step summary { padding: 10px 14px; cursor: pointer; display: flex; gap: 12px; align-items: baseline; }
.agent { font-weight: 600; min-width: 130px; }
.outcome { font-size: 12px; font-weight: 700; text-transform: uppercase; padding: 1px 8px; border-radius: 10px;
           color: #fff; }
.outcome.ok { background: var(--ok); } .outcome.fallback { background: var(--fallback); }
.outcome.error { background: var(--error); }
.why { color: var(--error); font-size: 13px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; flex: 1; }
.step-body { padding: 0 14px 12px; }
dl { display: grid; grid-template-columns: 150px 1fr; gap: 2px 10px; margin: 0 0 8px; font-size: 13px; }
dt { color: var(--muted); } dd { margin: 0; font-family: ui-monospace, "DejaVu Sans Mono", monospace; word-break: break-all; }
pre { background: #0f1420; color: #dfe6f3; padding: 10px 12px; border-radius: 6px; overflow: auto; max-height: 360px;
      font: 12px/1.45 ui-monospace, "DejaVu Sans Mono", monospace; white-space: pre-wrap; word-break: break-word; }
.label { font-size: 12px; color: var(--muted); margin: 8px 0 2px; text-transform: uppercase; letter-spacing: .04em; }
.label.attempt-head { text-transform: none; letter-spacing: 0; }
"""

_SCRIPT = """
"use strict";
const $ = (id) => document.getElementById(id);
function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}
function secs(v) { return (typeof v === "number" ? v.toFixed(2) : "?") + " s"; }
function setStatus(text, isError) { const s = $("status"); s.textContent = text; s.className = isError ? "error" : ""; }

async function loadUsers() {
  try {
    const r = await fetch("/api/users");
    const data = await r.json();
    for (const u of data.users || []) {
      const opt = el("option", null, u.name ? u.id + " (" + u.name + ")" : u.id);
      opt.value = u.id;
      $("user").appendChild(opt);
    }
  } catch (e) { /* the picker stays at "anyone" */ }
}

function renderRanking(items) {
  const list = $("ranking");
  list.replaceChildren();
  const top = Math.max(...items.map((i) => i.score), 0) || 1;
  for (const item of items) {
    const li = el("li", "item");
    const head = el("div");
    head.appendChild(el("span", "title", item.title));
    const meta = [item.year, (item.genres || []).join(", ")].filter((x) => x !== null && x !== undefined && x !== "");
    if (meta.length) head.appendChild(el("span", "meta", "  " + meta.join(" · ")));
    li.appendChild(head);
    const score = el("div", "score", Number(item.score).toFixed(3));
    const bar = el("div", "bar"); const fill = el("span");
    fill.style.width = Math.max(2, Math.round(100 * item.score / top)) + "%";
    bar.appendChild(fill); score.appendChild(bar);
    li.appendChild(score);
    li.appendChild(el("div", "reason", item.reason));
    list.appendChild(li);
  }
  if (!items.length) list.appendChild(el("li", "meta", "No recommendations for this query."));
}

function renderSteps(steps) {
  const box = $("steps");
  box.replaceChildren();
  for (const step of steps) {
    const d = el("details", "step");
    d.dataset.agent = step.agent;
    const s = el("summary");
    s.appendChild(el("span", "agent", step.agent));
    s.appendChild(el("span", "outcome " + step.outcome, step.outcome));
    s.appendChild(el("span", "meta", secs(step.duration_s) + " · sandbox " + (step.sandbox_id || "none")));
    if (step.error) s.appendChild(el("span", "why", String(step.error).split("\\n")[0].slice(0, 160)));
    d.appendChild(s);
    const body = el("div", "step-body");
    const dl = el("dl");
    const rows = [["template", step.template], ["sandbox id", step.sandbox_id || "none"],
                  ["attempts", step.attempts], ["duration", secs(step.duration_s)],
                  ["sandbox-seconds", secs(step.sandbox_seconds)], ["outcome", step.outcome]];
    if (step.output_summary) rows.push(["result", step.output_summary]);
    if (step.error) rows.push(["error", step.error]);
    for (const [k, v] of rows) { dl.appendChild(el("dt", null, k)); dl.appendChild(el("dd", null, v)); }
    body.appendChild(dl);
    body.appendChild(el("div", "label", "generated code"));
    body.appendChild(el("pre", "code", step.code || "(none)"));
    const tries = step.attempt_details || [];
    if (tries.length > 1) {  // a retry: show every attempt's code and how it ended
      tries.forEach((a, n) => {
        const how = a.error ? "failed: " + a.error : "exit code " + a.exit_code;
        body.appendChild(el("div", "label attempt-head", "attempt " + (n + 1) + " · " + secs(a.duration_s) + " · " + how));
        body.appendChild(el("pre", "attempt", a.code));
      });
    }
    body.appendChild(el("div", "label", "logs"));
    body.appendChild(el("pre", "logs", step.logs || "(empty)"));
    d.appendChild(body);
    box.appendChild(d);
  }
}

function render(trace) {
  renderRanking(trace.recommendations || []);
  renderSteps(trace.steps || []);
  $("summary").textContent = "request " + trace.request_id + " · " + secs(trace.duration_s) +
    " · " + secs(trace.sandbox_seconds) + " of sandbox time" + (trace.user_id ? " · for " + trace.user_id : "");
  $("results").hidden = false;
  $("steps-section").hidden = false;
}

async function ask(event) {
  event.preventDefault();
  const query = $("query").value.trim();
  if (!query) { setStatus("Type what you would like to watch.", true); return; }
  const body = { query };
  if ($("user").value) body.user_id = $("user").value;
  $("go").disabled = true;
  setStatus("Running the agents in their sandboxes…", false);
  try {
    const r = await fetch("/api/query", { method: "POST", headers: { "Content-Type": "application/json" },
                                          body: JSON.stringify(body) });
    const data = await r.json();
    if (!r.ok) { setStatus("Error: " + (data.message || r.statusText), true); return; }
    render(data);
    history.replaceState(null, "", "#r=" + encodeURIComponent(data.request_id));
    setStatus((data.recommendations || []).length + " recommendations for “" + data.query + "”", false);
  } catch (e) {
    setStatus("Error: " + e, true);
  } finally {
    $("go").disabled = false;
  }
}

async function fromHash() {
  const m = location.hash.match(/^#r=([A-Za-z0-9_-]{1,64})$/);
  if (!m) return;
  const r = await fetch("/api/requests/" + m[1]);
  if (r.ok) { const t = await r.json(); $("query").value = t.query; render(t); setStatus("Request " + t.request_id, false); }
}

$("ask").addEventListener("submit", ask);
loadUsers();
fromHash();
"""

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Media Gateway</title>
<style nonce="{nonce}">{style}</style>
</head>
<body>
<header><h1>Media Gateway</h1><p>Recommendations computed by agents running generated code in sandboxes</p></header>
<main>
<form id="ask" autocomplete="off">
  <input id="query" name="query" maxlength="500" placeholder="sci-fi like Stranger Things" aria-label="What would you like to watch?">
  <select id="user" aria-label="For user"><option value="">anyone</option></select>
  <button id="go" type="submit">Recommend</button>
</form>
<div id="status" role="status" aria-live="polite"></div>
<section id="results" hidden>
  <ol id="ranking"></ol>
</section>
<div id="summary"></div>
<section id="steps-section" hidden>
  <h2>Agent steps</h2>
  <div id="steps"></div>
</section>
</main>
<script nonce="{nonce}">{script}</script>
</body>
</html>
"""


def render_page(nonce: str) -> str:
    """The page with `nonce` on its one style and one script (the CSP names the same nonce)."""
    return _PAGE.format(nonce=nonce, style=_STYLE, script=_SCRIPT)

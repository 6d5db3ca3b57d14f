// corral dashboard. Every node is built with createElement/textContent (never innerHTML):
// sandbox metadata is user input. The API key lives in sessionStorage and travels only in the
// X-API-Key header.
"use strict";

const KEY = "corral-api-key";
const COLORS = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04"];
const SVGNS = "http://www.w3.org/2000/svg";
let selected = null;
let timers = [];

function $(id) { return document.getElementById(id); }

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

class Unauthorized extends Error {}

async function api(method, path) {
  const key = sessionStorage.getItem(KEY);
  const resp = await fetch(path, { method, headers: { "X-API-Key": key || "" }, cache: "no-store", credentials: "omit" });
  if (resp.status === 401) throw new Unauthorized("the API key was refused");
  if (resp.status === 204) return null;
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (!resp.ok) throw new Error((body && body.message) || ("HTTP " + resp.status));
  return body;
}

function age(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
  return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
}

function mb(bytes) { return (bytes / 1048576).toFixed(1) + " MB"; }
function money(v, cur) { return (cur === "USD" ? "$" : "") + Number(v).toFixed(4) + (cur && cur !== "USD" ? " " + cur : ""); }

// --- login --------------------------------------------------------------------------------

function showLogin(message) {
  timers.forEach(clearInterval); timers = [];
  sessionStorage.removeItem(KEY);
  $("main-view").hidden = true; $("logout").hidden = true; $("login-view").hidden = false;
  $("login-error").textContent = message || "";
}

async function showMain() {
  try {
    await refreshSandboxes();
  } catch (e) {
    showLogin(e instanceof Unauthorized ? "That key was refused." : "Cannot reach the server: " + e.message);
    return;
  }
  $("login-view").hidden = true; $("main-view").hidden = false; $("logout").hidden = false;
  refreshUsage();
  timers.push(setInterval(() => refreshSandboxes().catch(handle), 2000));
  timers.push(setInterval(() => refreshUsage(), 15000));
}

function handle(e) {
  if (e instanceof Unauthorized) showLogin("The key is no longer accepted.");
  else $("action-error").textContent = e.message;
}

// --- live sandboxes -----------------------------------------------------------------------

async function refreshSandboxes() {
  const rows = await api("GET", "/dashboard/api/sandboxes");
  const body = $("sandboxes").tBodies[0];
  body.replaceChildren();
  for (const s of rows) body.appendChild(sandboxRow(s));
  $("live-count").textContent = "(" + rows.length + ")";
  $("no-sandboxes").hidden = rows.length > 0;
  $("sandboxes").hidden = rows.length === 0;
  if (selected && !rows.some((s) => s.sandboxID === selected)) { selected = null; $("details").hidden = true; }
  else if (selected) refreshDetails();
}

function sandboxRow(s) {
  const tr = el("tr", null, { "data-id": s.sandboxID });
  if (s.sandboxID === selected) tr.className = "selected";
  tr.appendChild(el("td", s.sandboxID, { class: "mono" }));
  tr.appendChild(el("td", s.template));
  tr.appendChild(el("td", s.tier));
  tr.appendChild(el("td", s.state, { class: "state-" + s.state }));
  tr.appendChild(el("td", age(s.ageSeconds), { class: "num" }));
  tr.appendChild(el("td", (s.cpuUsedPct === null ? "-" : s.cpuUsedPct.toFixed(1) + "%") + " of " + s.cpuCount + " vCPU", { class: "num" }));
  tr.appendChild(el("td", (s.memUsed === null ? "-" : mb(s.memUsed)) + " of " + s.memoryMB + " MB", { class: "num" }));
  const meta = el("td");
  for (const [k, v] of Object.entries(s.metadata || {})) meta.appendChild(el("span", k + "=" + v, { class: "meta" }));
  tr.appendChild(meta);
  const actions = el("td");
  const toggle = s.state === "paused"
    ? el("button", "Resume", { type: "button", "data-action": "resume" })
    : el("button", "Pause", { type: "button", "data-action": "pause" });
  toggle.addEventListener("click", () => act(s.state === "paused" ? "POST" : "POST",
    "/sandboxes/" + encodeURIComponent(s.sandboxID) + (s.state === "paused" ? "/connect" : "/pause")));
  const kill = el("button", "Kill", { type: "button", "data-action": "kill" });
  kill.addEventListener("click", () => act("DELETE", "/sandboxes/" + encodeURIComponent(s.sandboxID)));
  const details = el("button", "Details", { type: "button", "data-action": "details" });
  details.addEventListener("click", () => { selected = s.sandboxID; refreshSandboxes().catch(handle); });
  actions.append(toggle, kill, details);
  tr.appendChild(actions);
  return tr;
}

async function act(method, path) {
  $("action-error").textContent = "";
  try { await api(method, path); await refreshSandboxes(); } catch (e) { handle(e); }
}

async function refreshDetails() {
  const id = selected;
  const enc = encodeURIComponent(id);
  const [audit, logs] = await Promise.all([
    api("GET", "/sandboxes/" + enc + "/network/audit").catch((e) => ({ error: e.message })),
    api("GET", "/v2/sandboxes/" + enc + "/logs?limit=200").catch((e) => ({ logs: [], error: e.message })),
  ]);
  if (id !== selected) return;
  $("details").hidden = false;
  $("details-id").textContent = id;
  const box = $("audit");
  box.replaceChildren();
  if (audit.error) box.appendChild(el("p", audit.error, { class: "error" }));
  else if (!audit.attached) box.appendChild(el("p", "No network: this sandbox is offline.", { class: "muted" }));
  else {
    box.appendChild(el("p", "Bytes out " + audit.bytes_out + ", bytes in " + audit.bytes_in + ", denied attempts " + audit.denied_attempts));
    const t = el("table");
    const head = el("tr"); ["Host", "Bytes out", "Bytes in"].forEach((h) => head.appendChild(el("th", h)));
    t.appendChild(head);
    for (const h of audit.hosts || []) {
      const r = el("tr");
      r.append(el("td", (h.names && h.names.length ? h.names.join(", ") + " " : "") + (h.ip || "")), el("td", h.bytes_out, { class: "num" }), el("td", h.bytes_in, { class: "num" }));
      t.appendChild(r);
    }
    box.appendChild(t);
  }
  const list = $("logs");
  list.replaceChildren();
  for (const entry of logs.logs || []) list.appendChild(el("li", entry.timestamp.slice(11, 23) + "  " + entry.message, { class: entry.level }));
}

// --- usage --------------------------------------------------------------------------------

async function refreshUsage() {
  const by = $("usage-by").value.trim() || "template";
  const since = $("usage-since").value;
  $("usage-error").textContent = "";
  let report;
  try {
    report = await api("GET", "/usage?by=" + encodeURIComponent(by) + "&since=" + encodeURIComponent(since));
  } catch (e) {
    if (e instanceof Unauthorized) { showLogin("The key is no longer accepted."); return; }
    $("usage-error").textContent = e.message; return;
  }
  const cur = report.prices.currency;
  const keys = report.groups.map((g) => g.key);
  const color = (k) => COLORS[keys.indexOf(k) % COLORS.length];
  chart($("chart-sandboxes"), report, "sandboxes", color, (v) => String(v));
  chart($("chart-hours"), report, "running_hours", color, (v) => v.toFixed(3) + " h");
  const legend = $("legend");
  legend.replaceChildren();
  for (const k of keys) { const sw = el("span", null, { class: "swatch" }); sw.style.background = color(k); legend.append(sw, document.createTextNode(k)); }
  const body = $("usage-table").tBodies[0];
  body.replaceChildren();
  for (const g of [...report.groups, report.total]) {
    const r = el("tr");
    r.append(el("td", g.key === "total" ? "Total" : g.key), el("td", g.sandboxes, { class: "num" }),
      el("td", g.sandboxes_per_day.toFixed(g.sandboxes_per_day < 10 ? 2 : 1), { class: "num" }), el("td", g.avg_duration_s.toFixed(1) + "s", { class: "num" }),
      el("td", g.running_hours.toFixed(3), { class: "num" }), el("td", g.monthly_hours.toFixed(g.monthly_hours < 10 ? 3 : 1), { class: "num" }),
      el("td", money(g.cost, cur), { class: "num" }));
    body.appendChild(r);
  }
  const cost = $("cost-table").tBodies[0];
  cost.replaceChildren();
  for (const c of report.cost_table) {
    const r = el("tr");
    r.append(el("td", c.component), el("td", c.note || money(c.monthly_cost, cur), { class: "num" }));
    cost.appendChild(r);
  }
  $("prices").textContent = "Prices: " + report.prices.name + (report.prices.source ? " (" + report.prices.source + ")" : "");
}

// A stacked bar per day: one segment per group. Dates with no sandboxes in the period are shown
// as empty days so the time axis is true.
function chart(container, report, field, color, fmt) {
  const days = [];
  const start = new Date(report.since.slice(0, 10) + "T00:00:00Z");
  const end = new Date(report.until);
  for (let d = start; d <= end && days.length < 400; d = new Date(d.getTime() + 86400000)) days.push(d.toISOString().slice(0, 10));
  const byDay = {};
  for (const row of report.daily) (byDay[row.date] = byDay[row.date] || []).push(row);
  const totals = days.map((d) => (byDay[d] || []).reduce((a, r) => a + r[field], 0));
  const max = Math.max(1e-9, ...totals);
  const W = 600, H = 180, pad = 28, bw = (W - pad - 4) / Math.max(1, days.length);
  const root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": field + " per day" });
  root.appendChild(svg("line", { x1: pad, y1: H - 18, x2: W, y2: H - 18, stroke: "#9ca3af" }));
  const top = svg("text", { x: 2, y: 12, "font-size": 10, fill: "#6b7280" }); top.textContent = fmt(max); root.appendChild(top);
  days.forEach((d, i) => {
    let y = H - 18;
    for (const row of byDay[d] || []) {
      const h = (row[field] / max) * (H - 36);
      const rect = svg("rect", { x: pad + i * bw + 1, y: y - h, width: Math.max(1, bw - 2), height: h, fill: color(row.key), "data-date": d, "data-key": row.key });
      const t = svg("title"); t.textContent = d + " " + row.key + ": " + fmt(row[field]); rect.appendChild(t);
      root.appendChild(rect); y -= h;
    }
    if (days.length <= 10 || i % Math.ceil(days.length / 8) === 0) {
      const lab = svg("text", { x: pad + i * bw + 1, y: H - 4, "font-size": 9, fill: "#6b7280" }); lab.textContent = d.slice(5); root.appendChild(lab);
    }
  });
  container.replaceChildren(root);
}

// --- start ----------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const key = $("key").value.trim();
    $("key").value = "";
    if (!key) return;
    sessionStorage.setItem(KEY, key);
    showMain();
  });
  $("logout").addEventListener("click", () => showLogin(""));
  $("usage-form").addEventListener("submit", (ev) => { ev.preventDefault(); refreshUsage(); });
  if (sessionStorage.getItem(KEY)) showMain(); else showLogin("");
});

// The evindex dashboard: source states from /v1/sources, node statuses from
// /v1/nodes with each node's history, and a daily reward bar chart per
// account from /v1/rewards/summary, each with its CSV and Parquet export.
// Everything is drawn here, with no external code, so the page works
// offline.
"use strict";

const TOKEN_KEY = "evindex.token";
const SOURCES_EVERY_MS = 5000;
const CHART_EVERY_MS = 30000;
const WINDOWS = [7, 30, 90, 365]; // the window choices, in days
const HISTORY_POINTS = 48; // snapshots in a node's sparkline
const SVG_NS = "http://www.w3.org/2000/svg";

const $ = (sel) => document.querySelector(sel);

class Unauthorized extends Error {}

// api fetches a JSON document of the API, with the stored token if any. A
// 401 asks the user for the token.
async function api(path) {
  const res = await fetch(path, { headers: authHeaders({ Accept: "application/json" }), cache: "no-store" });
  if (res.status === 401) {
    askToken(token ? "That token was not accepted." : "");
    throw new Unauthorized("token needed");
  }
  let body = null;
  try {
    body = await res.json();
  } catch (e) {
    throw new Error(path + ": HTTP " + res.status);
  }
  if (!res.ok) {
    const msg = body && body.error ? body.error.message : "HTTP " + res.status;
    throw new Error(msg);
  }
  return body;
}

function authHeaders(headers) {
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  return headers;
}

function askToken(message) {
  $("#auth").hidden = false;
  $("#auth-error").textContent = message;
  $("#logout").hidden = true;
  $("#token").focus();
}

function setStatus(text, isError) {
  const el = $("#status");
  el.textContent = text;
  el.classList.toggle("error", !!isError);
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}

const numberFmt = new Intl.NumberFormat("en-US");

// --- times -----------------------------------------------------------------

// zone is the browser's time zone; every time on the page is written in
// it, in one format (2026-12-01 12:46:13), and the header names it once.
const zone = (() => {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch (e) {
    return "UTC";
  }
})();
let useUTC = zone === "UTC";

function pad(n) {
  return String(n).padStart(2, "0");
}

// dayKey is the date of d in the page's zone, as the API writes it at the
// start of bucket_start.
function dayKey(d) {
  return useUTC
    ? d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate())
    : d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
}

function fmtTime(v) {
  const d = v instanceof Date ? v : new Date(v);
  if (isNaN(d)) return "";
  const hms = useUTC
    ? pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds())
    : pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  return dayKey(d) + " " + hms;
}

// ago says how long before now a time was; a time ahead of the clock says
// so instead of passing for "just now".
function ago(iso) {
  if (!iso) return "";
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (!isFinite(s)) return "";
  if (s < -1) return "in " + duration(-s) + " (ahead of this clock)";
  if (s < 1) return "now";
  return duration(s) + " ago";
}

function duration(seconds) {
  if (!isFinite(seconds) || seconds <= 0) return "";
  if (seconds < 90) return Math.round(seconds) + " s";
  if (seconds < 5400) return Math.round(seconds / 60) + " min";
  if (seconds < 172800) return (seconds / 3600).toFixed(1) + " h";
  return (seconds / 86400).toFixed(1) + " d";
}

// --- sources ---------------------------------------------------------------

// Presearch positions are the Unix seconds that end an earnings window,
// not block heights: they read as times, and their lag as a duration.
function positionsAreTimes(s) {
  return s.kind === "presearch";
}

function position(s, height) {
  if (!height) return "–";
  return positionsAreTimes(s) ? fmtTime(new Date(height * 1000)) : numberFmt.format(height);
}

// checkpointCell shows where the checkpoint is, how old the data at it is
// (its block time, or the window's end), and when it was stored: a source
// can store a checkpoint now whose block is an hour old.
function checkpointCell(s) {
  const cp = s.checkpoint;
  if (!cp) return el("td", { class: "checkpoint num" }, "–");
  const age = cp.time ? (positionsAreTimes(s) ? "window end " : "block time ") + ago(cp.time) : "";
  return el("td", { class: "checkpoint num" }, position(s, cp.height),
    age ? el("span", { class: "sub age", title: fmtTime(cp.time) }, age) : null,
    el("span", { class: "sub stored", title: fmtTime(cp.updated_at) }, "stored " + ago(cp.updated_at)));
}

function sourceRow(s) {
  const times = positionsAreTimes(s);
  let progress = el("td", { class: "progress" });
  if (s.progress && s.progress.total > 0) {
    const p = s.progress;
    const pct = Math.min(100, (100 * p.done) / p.total);
    progress = el("td", { class: "progress" },
      el("progress", { max: String(p.total), value: String(p.done) }),
      " " + pct.toFixed(1) + "%",
      el("span", { class: "sub" }, numberFmt.format(p.done) + " / " + numberFmt.format(p.total),
        p.rate > 0 ? " · " + p.rate.toFixed(1) + "/s" : "",
        p.eta_seconds > 0 ? " · ETA " + duration(p.eta_seconds) : ""));
  }
  return el("tr", { class: "source", "data-name": s.name, "data-state": s.state },
    el("td", { class: "name" }, s.name, el("span", { class: "sub" }, s.endpoint || "")),
    el("td", { class: "kind" }, s.kind),
    el("td", { class: "state state-" + s.state }, s.state),
    checkpointCell(s),
    el("td", { class: "head num" }, position(s, s.head_height)),
    el("td", { class: "lag num" }, times ? duration(s.lag) || "0 s" : numberFmt.format(s.lag)),
    progress,
    el("td", { class: "events num" }, numberFmt.format(s.events_indexed)),
    el("td", { class: "rewards num" }, numberFmt.format(s.rewards_indexed)),
    lastError(s));
}

// lastError shows a source's last error with its time; one from before the
// source last became live is dimmed, since it is no longer the matter.
function lastError(s) {
  if (!s.last_error) return el("td", { class: "error" }, "");
  const at = s.last_error_at ? new Date(s.last_error_at) : null;
  const past = at && s.live_since && new Date(s.live_since) >= at;
  return el("td", { class: past ? "error past" : "error", title: at ? fmtTime(at) : "" },
    s.last_error, at ? el("span", { class: "sub" }, fmtTime(at)) : "");
}

async function loadSources() {
  const body = await api("v1/sources");
  const tbody = $("#sources tbody");
  tbody.replaceChildren(...body.items.map(sourceRow));
  $("#no-sources").hidden = body.items.length > 0;
}

// --- nodes -----------------------------------------------------------------

// nodeNames maps "source\0node" to what a person calls the node: a
// Presearch node's description (its keys share a long common prefix).
let nodeNames = new Map();

function shortId(a) {
  return a.length > 24 ? a.slice(0, 10) + "…" + a.slice(-8) : a;
}

function nodeName(source, node, details) {
  const meta = details && details.meta;
  if (meta && typeof meta.description === "string" && meta.description.trim()) return meta.description.trim();
  return shortId(node);
}

function yesNo(v) {
  if (v === true) return el("span", { class: "yes" }, "yes");
  if (v === false) return el("span", { class: "no" }, "no");
  return "–";
}

// sparkline draws a node's snapshots, oldest first, as one tick each:
// tall and green when connected, short and red when not.
function sparkline(snapshots) {
  const W = 144, H = 18, n = Math.max(snapshots.length, 1), w = W / n;
  const plot = svg("svg", { class: "spark", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
    "aria-label": "connected over the last " + snapshots.length + " snapshots" });
  snapshots.forEach((s, i) => {
    const up = s.connected === true;
    plot.append(svg("rect", { class: up ? "tick up" : "tick down", x: (i * w).toFixed(2), y: up ? 0 : H - 6,
      width: Math.max(w - 1, 1).toFixed(2), height: up ? H : 6 },
      svg("title", {}, fmtTime(s.time) + (up ? " connected" : " not connected"))));
  });
  return plot;
}

async function nodeHistory(n) {
  const path = "v1/nodes/" + encodeURIComponent(n.source) + "/" + encodeURIComponent(n.node) +
    "/history?order=desc&limit=" + HISTORY_POINTS;
  const body = await api(path);
  return body.items.reverse();
}

async function loadNodes() {
  const body = await api("v1/nodes");
  const names = new Map();
  const rows = await Promise.all(body.items.map(async (n) => {
    const name = nodeName(n.source, n.node, n.details);
    names.set(n.source + "\u0000" + n.node, name);
    const history = await nodeHistory(n);
    return el("tr", { class: "node", "data-source": n.source, "data-node": n.node },
      el("td", {}, n.source),
      el("td", { class: "node-name", title: n.node }, name, name !== shortId(n.node) ? el("span", { class: "sub" }, shortId(n.node)) : null),
      el("td", { class: "connected" }, yesNo(n.connected)),
      el("td", { class: "synced" }, yesNo(n.synced)),
      el("td", { class: "seen", title: fmtTime(n.time) }, ago(n.time)),
      el("td", { class: "history" }, sparkline(history)));
  }));
  nodeNames = names;
  $("#nodes tbody").replaceChildren(...rows);
  $("#no-nodes").hidden = rows.length > 0;
}

// --- reward chart ----------------------------------------------------------

// windowStart is the instant the day n-1 days before today starts.
function windowStart(n) {
  const start = new Date();
  if (useUTC) {
    start.setUTCHours(0, 0, 0, 0);
    start.setUTCDate(start.getUTCDate() - (n - 1));
  } else {
    start.setHours(0, 0, 0, 0);
    start.setDate(start.getDate() - (n - 1));
  }
  return start;
}

// windowDays lists the days of the last n, oldest first; the last is today.
function windowDays(n) {
  const d = windowStart(n);
  const days = [];
  for (let i = 0; i < n; i++) {
    days.push(dayKey(d));
    if (useUTC) d.setUTCDate(d.getUTCDate() + 1);
    else d.setDate(d.getDate() + 1);
  }
  return days;
}

// fitWindow is the smallest window choice that holds the oldest day with
// rewards, so a week of data is not a sliver at the right of a month.
function fitWindow(rows) {
  let oldest = null;
  for (const r of rows) {
    const day = r.bucket_start.slice(0, 10);
    if (r.raw_amount !== "0" && (!oldest || day < oldest)) oldest = day;
  }
  if (!oldest) return WINDOWS[0];
  for (const n of WINDOWS) {
    if (windowDays(n)[0] <= oldest) return n;
  }
  return WINDOWS[WINDOWS.length - 1];
}

function fmtAmount(v) {
  if (v === 0) return "0";
  if (Math.abs(v) >= 1000) return numberFmt.format(Math.round(v));
  return Number(v.toPrecision(4)).toString();
}

// summaryQuery is the API query of one chart's data, for its export links.
function summaryQuery(s, start, format) {
  const q = new URLSearchParams({ group_by: "day", source: s.source, account: s.account, from_time: start.toISOString() });
  if (!useUTC) q.set("tz", zone);
  q.set("format", format);
  return "v1/rewards/summary?" + q.toString();
}

// exportLink downloads a chart's rows. With a token the browser cannot
// send the header on a plain link, so the file is fetched and saved.
function exportLink(href, label, filename) {
  const a = el("a", { class: "export", href, download: filename }, label);
  a.addEventListener("click", async (ev) => {
    if (!localStorage.getItem(TOKEN_KEY)) return;
    ev.preventDefault();
    const res = await fetch(href, { headers: authHeaders({}), cache: "no-store" });
    if (!res.ok) {
      setStatus(label + " export: HTTP " + res.status, true);
      return;
    }
    const url = URL.createObjectURL(await res.blob());
    const tmp = el("a", { href: url, download: filename });
    document.body.append(tmp);
    tmp.click();
    tmp.remove();
    URL.revokeObjectURL(url);
  });
  return a;
}

// seriesChart draws one account's daily amounts as bars; today's, still
// growing, is drawn lighter and labelled so.
function seriesChart(s, days, start) {
  // About the size the figure is drawn at, so labels keep their size.
  const W = 400, H = 150, L = 50, R = 8, T = 12, B = 22;
  const values = days.map((d) => (s.byDay.has(d) ? parseFloat(s.byDay.get(d).amount) : 0));
  const max = Math.max(...values, 0) || 1;
  const slot = (W - L - R) / days.length;
  const barW = Math.max(slot * 0.8, 1);
  const y = (v) => T + (H - T - B) * (1 - v / max);

  const plot = svg("svg", { class: "plot", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `${s.unit} per day for ${s.account}` });
  plot.append(
    svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }),
    svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }),
    svg("text", { class: "label", x: L - 4, y: T + 8, "text-anchor": "end" }, fmtAmount(max)),
    svg("text", { class: "label", x: L - 4, y: H - B, "text-anchor": "end" }, "0"),
    svg("text", { class: "label", x: L, y: H - 6 }, days[0]),
    svg("text", { class: "label", x: W - R, y: H - 6, "text-anchor": "end" }, "today (so far)"));
  values.forEach((v, i) => {
    const row = s.byDay.get(days[i]);
    const amount = row ? row.amount : "0";
    const count = row ? row.count : 0;
    const today = i === days.length - 1;
    const top = v === 0 ? H - B - 1 : y(v);
    const cls = "bar" + (v === 0 ? " zero" : "") + (today ? " partial" : "");
    plot.append(svg("rect", {
      class: cls, x: (L + i * slot + (slot - barW) / 2).toFixed(2), y: top.toFixed(2),
      width: barW.toFixed(2), height: (H - B - top).toFixed(2),
      "data-day": days[i], "data-amount": amount, "data-count": String(count),
    }, svg("title", {}, `${days[i]}${today ? " (today, so far)" : ""}: ${amount} ${s.unit} (${count} reward${count === 1 ? "" : "s"})`)));
  });
  const label = nodeNames.get(s.source + "\u0000" + s.account) || shortId(s.account);
  const file = `${s.source}-${label.replace(/[^A-Za-z0-9._-]+/g, "_")}-daily`;
  return el("figure", { class: "series", "data-source": s.source, "data-account": s.account, "data-unit": s.unit },
    el("figcaption", { title: s.account }, `${s.source} · ${label} · ${fmtAmount(s.total)} ${s.unit}`),
    plot,
    el("div", { class: "exports" }, "Export: ",
      exportLink(summaryQuery(s, start, "csv"), "CSV", file + ".csv"), " · ",
      exportLink(summaryQuery(s, start, "parquet"), "Parquet", file + ".parquet")));
}

async function loadChart() {
  // One year of daily buckets: what the widest window shows, and what
  // fitting the window to the data looks at.
  const yearStart = windowStart(WINDOWS[WINDOWS.length - 1]);
  let body;
  try {
    const tz = useUTC ? "" : `&tz=${encodeURIComponent(zone)}`;
    body = await api(`v1/rewards/summary?group_by=day${tz}&from_time=${encodeURIComponent(yearStart.toISOString())}`);
  } catch (e) {
    if (e instanceof Unauthorized || useUTC) throw e;
    // The server does not know the browser's zone: fall back to UTC days.
    useUTC = true;
    return loadChart();
  }
  const choice = $("#days").value;
  const n = choice === "fit" ? fitWindow(body.items) : parseInt(choice, 10) || 30;
  const days = windowDays(n);
  const start = windowStart(n);
  $("#window-label").textContent = `${days[0]} to ${days[days.length - 1]} (${n} days${choice === "fit" ? ", fitted to the data" : ""})`;
  const series = new Map();
  for (const row of body.items) {
    const day = row.bucket_start.slice(0, 10);
    if (day < days[0]) continue;
    const key = row.source + "\u0000" + row.account + "\u0000" + row.unit;
    let s = series.get(key);
    if (!s) {
      s = { source: row.source, account: row.account, unit: row.unit, byDay: new Map(), total: 0 };
      series.set(key, s);
    }
    s.byDay.set(day, row);
    s.total += parseFloat(row.amount);
  }
  const sorted = [...series.values()].sort((a, b) =>
    a.source.localeCompare(b.source) || a.account.localeCompare(b.account) || a.unit.localeCompare(b.unit));
  $("#chart").replaceChildren(...sorted.map((s) => seriesChart(s, days, start)));
  $("#no-rewards").hidden = sorted.length > 0;
  $("#no-rewards").textContent = "No rewards in these " + n + " days.";
}

// --- refresh loop ----------------------------------------------------------

let lastSlow = 0;
let timer = null;

async function refresh(forceSlow) {
  clearTimeout(timer);
  try {
    await loadSources();
    if (forceSlow || Date.now() - lastSlow >= CHART_EVERY_MS) {
      // Nodes first: the chart names Presearch accounts by description.
      await loadNodes();
      await loadChart();
      lastSlow = Date.now();
    }
    $("#auth").hidden = true;
    $("#logout").hidden = !localStorage.getItem(TOKEN_KEY);
    $("#zone-label").textContent = "times in " + (useUTC ? "UTC" : zone);
    setStatus("updated " + fmtTime(new Date()));
  } catch (e) {
    if (e instanceof Unauthorized) {
      setStatus("token needed", true);
      return; // resumes when a token is entered
    }
    setStatus(e.message, true);
  }
  timer = setTimeout(() => refresh(false), SOURCES_EVERY_MS);
}

$("#auth").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const t = $("#token").value.trim();
  if (!t) return;
  localStorage.setItem(TOKEN_KEY, t);
  $("#token").value = "";
  refresh(true);
});

$("#logout").addEventListener("click", () => {
  localStorage.removeItem(TOKEN_KEY);
  refresh(true);
});

// The window choice lives in the address (#days=90), so a link or a reload
// keeps it.
const hashDays = /(?:^#|&)days=(fit|\d+)/.exec(location.hash);
if (hashDays && [...$("#days").options].some((o) => o.value === hashDays[1])) $("#days").value = hashDays[1];

$("#days").addEventListener("change", () => {
  history.replaceState(null, "", "#days=" + $("#days").value);
  refresh(true);
});

refresh(true);

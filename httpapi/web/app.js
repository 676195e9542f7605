// The evindex dashboard: source states from /v1/sources and a daily reward
// chart per account from /v1/rewards/summary. Everything is drawn here, with
// no external code, so the page works offline.
"use strict";

const TOKEN_KEY = "evindex.token";
const SOURCES_EVERY_MS = 5000;
const CHART_EVERY_MS = 30000;
const SVG_NS = "http://www.w3.org/2000/svg";

const $ = (sel) => document.querySelector(sel);

class Unauthorized extends Error {}

// api fetches a JSON document of the API, with the stored token if any. A
// 401 asks the user for the token.
async function api(path) {
  const headers = { Accept: "application/json" };
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const res = await fetch(path, { headers, cache: "no-store" });
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

const numberFmt = new Intl.NumberFormat(undefined);

function ago(iso) {
  if (!iso) return "";
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (!isFinite(s)) return "";
  if (s < 0) return "just now";
  if (s < 90) return s + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  if (s < 172800) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

function duration(seconds) {
  if (!isFinite(seconds) || seconds <= 0) return "";
  if (seconds < 90) return Math.round(seconds) + " s";
  if (seconds < 5400) return Math.round(seconds / 60) + " min";
  return (seconds / 3600).toFixed(1) + " h";
}

// --- sources -------------------------------------------------------------

// Presearch positions are the Unix seconds that end an earnings window,
// not block heights: they read as times, and their lag as a duration.
function positionsAreTimes(s) {
  return s.kind === "presearch";
}

function position(s, height) {
  if (!height) return "–";
  return positionsAreTimes(s) ? new Date(height * 1000).toLocaleString() : numberFmt.format(height);
}

function sourceRow(s) {
  const cp = s.checkpoint;
  const times = positionsAreTimes(s);
  const checkpoint = cp
    ? el("td", { class: "checkpoint num" }, position(s, cp.height),
        el("span", { class: "sub" }, !times && cp.time ? new Date(cp.time).toLocaleString() + " " : "", ago(cp.updated_at)))
    : el("td", { class: "checkpoint num" }, "–");
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
    checkpoint,
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
  return el("td", { class: past ? "error past" : "error", title: at ? at.toISOString() : "" },
    s.last_error, at ? el("span", { class: "sub" }, at.toISOString().replace("T", " ").slice(0, 19) + " UTC") : "");
}

async function loadSources() {
  const body = await api("v1/sources");
  const tbody = $("#sources tbody");
  tbody.replaceChildren(...body.items.map(sourceRow));
  $("#no-sources").hidden = body.items.length > 0;
}

// --- reward chart --------------------------------------------------------

const zone = (() => {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch (e) {
    return "UTC";
  }
})();

function pad(n) {
  return String(n).padStart(2, "0");
}

// dayKey is the date of d in the chart's zone, as the API writes it at the
// start of bucket_start.
function dayKey(d, utc) {
  return utc
    ? d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate())
    : d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
}

// windowDays lists the last n days, oldest first, and the instant the
// first one starts.
function windowDays(n, utc) {
  const start = new Date();
  if (utc) start.setUTCHours(0, 0, 0, 0);
  else start.setHours(0, 0, 0, 0);
  if (utc) start.setUTCDate(start.getUTCDate() - (n - 1));
  else start.setDate(start.getDate() - (n - 1));
  const days = [];
  const d = new Date(start);
  for (let i = 0; i < n; i++) {
    days.push(dayKey(d, utc));
    if (utc) d.setUTCDate(d.getUTCDate() + 1);
    else d.setDate(d.getDate() + 1);
  }
  return { start, days };
}

function shortAccount(a) {
  return a.length > 24 ? a.slice(0, 12) + "…" + a.slice(-8) : a;
}

function fmtAmount(v) {
  if (v === 0) return "0";
  if (Math.abs(v) >= 1000) return numberFmt.format(Math.round(v));
  return Number(v.toPrecision(4)).toString();
}

// seriesChart draws one account's daily amounts as points joined by a line.
function seriesChart(s, days) {
  // About the size the figure is drawn at, so labels keep their size.
  const W = 400, H = 150, L = 50, R = 8, T = 12, B = 22;
  const values = days.map((d) => (s.byDay.has(d) ? parseFloat(s.byDay.get(d).amount) : 0));
  const max = Math.max(...values, 0) || 1;
  const x = (i) => L + (days.length === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (days.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);

  const plot = svg("svg", { class: "plot", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `${s.unit} per day for ${s.account}` });
  plot.append(
    svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }),
    svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }),
    svg("text", { class: "label", x: L - 4, y: T + 8, "text-anchor": "end" }, fmtAmount(max)),
    svg("text", { class: "label", x: L - 4, y: H - B, "text-anchor": "end" }, "0"),
    svg("text", { class: "label", x: L, y: H - 6 }, days[0]),
    svg("text", { class: "label", x: W - R, y: H - 6, "text-anchor": "end" }, days[days.length - 1]));
  plot.append(svg("polyline", { class: "line", points: values.map((v, i) => `${x(i)},${y(v)}`).join(" ") }));
  values.forEach((v, i) => {
    const row = s.byDay.get(days[i]);
    const amount = row ? row.amount : "0";
    const count = row ? row.count : 0;
    plot.append(svg("circle", {
      class: v === 0 ? "point zero" : "point", cx: x(i), cy: y(v), r: 3,
      "data-day": days[i], "data-amount": amount, "data-count": String(count),
    }, svg("title", {}, `${days[i]}: ${amount} ${s.unit} (${count} reward${count === 1 ? "" : "s"})`)));
  });
  return el("figure", { class: "series", "data-source": s.source, "data-account": s.account, "data-unit": s.unit },
    el("figcaption", { title: s.account }, `${s.source} · ${shortAccount(s.account)} · ${fmtAmount(s.total)} ${s.unit}`),
    plot);
}

async function loadChart() {
  const n = parseInt($("#days").value, 10) || 30;
  let utc = zone === "UTC";
  let { start, days } = windowDays(n, utc);
  let body;
  try {
    body = await api(`v1/rewards/summary?group_by=day&tz=${encodeURIComponent(zone)}&from_time=${encodeURIComponent(start.toISOString())}`);
  } catch (e) {
    if (e instanceof Unauthorized || utc) throw e;
    // The server does not know the browser's zone: fall back to UTC days.
    utc = true;
    ({ start, days } = windowDays(n, utc));
    body = await api(`v1/rewards/summary?group_by=day&from_time=${encodeURIComponent(start.toISOString())}`);
  }
  $("#tz-label").textContent = "(days in " + (utc ? "UTC" : zone) + ")";
  const series = new Map();
  for (const row of body.items) {
    const key = row.source + "\u0000" + row.account + "\u0000" + row.unit;
    let s = series.get(key);
    if (!s) {
      s = { source: row.source, account: row.account, unit: row.unit, byDay: new Map(), total: 0 };
      series.set(key, s);
    }
    s.byDay.set(row.bucket_start.slice(0, 10), row);
    s.total += parseFloat(row.amount);
  }
  const sorted = [...series.values()].sort((a, b) =>
    a.source.localeCompare(b.source) || a.account.localeCompare(b.account) || a.unit.localeCompare(b.unit));
  $("#chart").replaceChildren(...sorted.map((s) => seriesChart(s, days)));
  $("#no-rewards").hidden = sorted.length > 0;
}

// --- refresh loop --------------------------------------------------------

let lastChart = 0;
let timer = null;

async function refresh(forceChart) {
  clearTimeout(timer);
  try {
    await loadSources();
    if (forceChart || Date.now() - lastChart >= CHART_EVERY_MS) {
      await loadChart();
      lastChart = Date.now();
    }
    $("#auth").hidden = true;
    $("#logout").hidden = !localStorage.getItem(TOKEN_KEY);
    setStatus("updated " + new Date().toLocaleTimeString());
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

$("#days").addEventListener("change", () => refresh(true));

refresh(true);

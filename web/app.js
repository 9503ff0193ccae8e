// The encmond dashboard: a snapshot over the WebSocket, then live events.
// Every value from the server is put into the page with textContent, never
// as HTML, so names from databases and plugins cannot inject markup.
"use strict";

const state = {
  servers: {},      // name -> {role, address}
  targets: {},      // name -> [table names]
  results: new Map(), // "check/server/subject" -> result
  alerts: new Map(),  // id -> alert
  silences: [],       // active silences, newest first
};

const POLL_INTERVAL = 5000;
const MAX_BACKOFF = 30000;
const TOKEN_KEY = "encmond.token";
let socket = null;
let backoff = 1000;
let pollTimer = null;
let tokenDeclined = false;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function key(result) {
  return `${result.check}/${result.server}/${result.subject}`;
}

function result(check, server, subject) {
  return state.results.get(`${check}/${server}/${subject}`);
}

function ago(seconds) {
  const delta = Math.max(0, Date.now() / 1000 - seconds);
  if (delta < 60) return `${Math.round(delta)} s ago`;
  if (delta < 3600) return `${Math.round(delta / 60)} min ago`;
  return `${(delta / 3600).toFixed(1)} h ago`;
}

function applySnapshot(snapshot) {
  const metrics = snapshot.metrics;
  state.servers = {};
  for (const [name, server] of Object.entries(metrics.servers)) {
    state.servers[name] = {role: server.role, address: server.address};
  }
  state.targets = {};
  for (const [name, target] of Object.entries(metrics.targets)) {
    state.targets[name] = Object.keys(target.tables);
  }
  state.results = new Map(metrics.results.map((r) => [key(r), r]));
  state.alerts = new Map(snapshot.alerts.map((a) => [a.id, a]));
  render();
}

function applyEvent(event) {
  if (event.type === "snapshot") {
    applySnapshot(event);
  } else if (event.type === "results") {
    for (const r of event.results) state.results.set(key(r), r);
    render();
  } else if (event.type === "alert") {
    if (event.event === "dropped") state.alerts.delete(event.alert.id);
    else state.alerts.set(event.alert.id, event.alert);
    render();
  }
}

function worstStatus(statuses) {
  const rank = {OK: 0, UNKNOWN: 1, WARNING: 2, CRITICAL: 3};
  return statuses.reduce((worst, s) => (rank[s] > rank[worst] ? s : worst), "OK");
}

function renderBanner() {
  const banner = document.getElementById("banner");
  const firing = [...state.alerts.values()].filter((a) => a.state === "firing");
  const results = [...state.results.values()];
  if (results.length === 0) {
    banner.dataset.status = "UNKNOWN";
    banner.textContent = "waiting for the first results";
    return;
  }
  const status = worstStatus(firing.map((a) => a.severity).concat(
    results.map((r) => (r.status === "UNKNOWN" ? "OK" : r.status))));
  banner.dataset.status = status;
  banner.textContent = firing.length === 0
    ? "All checks OK"
    : `${firing.length} alert${firing.length === 1 ? "" : "s"} firing: ` +
      firing.slice(0, 3).map((a) => `${a.check} on ${a.server}: ${a.subject}`).join("; ");
}

function card(title, status, ...body) {
  return el("div", {className: "card", "data-status": status},
    el("h3", {}, el("span", {}, title),
      el("span", {className: "status", "data-status": status}, status)),
    ...body);
}

function renderServers() {
  const box = document.getElementById("servers");
  box.replaceChildren(...Object.entries(state.servers).map(([name, server]) => {
    const r = result("connection", name, name);
    const status = r ? r.status : "UNKNOWN";
    const up = r && r.metrics.up === 1;
    const latency = r && r.metrics.latency_seconds != null
      ? `${(r.metrics.latency_seconds * 1000).toFixed(1)} ms` : "–";
    return card(`${name} (${server.role})`, status,
      el("div", {}, up ? "up" : "down", " · ", server.address, " · ", latency),
      el("div", {className: "message"}, r ? r.message : "not checked yet"),
      encryptionLine(name),
      r ? el("div", {className: "message"}, "checked ", ago(r.time)) : null);
  }));
}

function encryptionLine(server) {
  const r = result("encryption", server, "at_rest");
  if (!r) return null;
  return el("div", {className: "message"}, "encryption: ", r.message);
}

function seconds(value) {
  return value === null || value === undefined ? "–" : `${Number(value).toFixed(2)} s`;
}

function catchUpLine(target) {
  const r = result("replica_lag", target, "catch_up");
  return r ? el("div", {className: "message"}, "catch-up: ", r.message) : null;
}

function renderCutover() {
  const box = document.getElementById("cutover");
  box.replaceChildren(...Object.keys(state.targets).map((name) => {
    const r = result("cutover", name, "verdict");
    const verdict = r && r.details.verdict ? r.details : null;
    const status = !verdict ? "UNKNOWN" : verdict.go ? "OK" : "CRITICAL";
    const label = verdict ? verdict.verdict : "not judged yet";
    const blockers = verdict ? verdict.blockers : [];
    return card(`${name}: ${label}`, status,
      el("ul", {}, ...blockers.map((b) => el("li", {},
        el("strong", {}, b.condition), ": ", b.problem,
        el("div", {className: "message"}, "clears when: ", b.clears)))),
      r ? el("div", {className: "message"}, "judged ", ago(r.time)) : null);
  }));
}

function renderReplication() {
  const box = document.getElementById("replication");
  box.replaceChildren(...Object.keys(state.targets).map((name) => {
    const r = result("replica_lag", name, "replication");
    const status = r ? r.status : "UNKNOWN";
    const lag = r ? r.metrics.lag_seconds : null;
    const shown = lag === null || lag === undefined ? "unknown" : `${lag} s`;
    const d = r ? r.details : {};
    return card(`${name} replication`, status,
      el("div", {className: "lag", "data-status": lag == null ? "UNKNOWN" : status}, shown),
      el("div", {}, "IO ", d.io_running || "–", " · SQL ", d.sql_running || "–",
        d.transactions_behind != null ? ` · ${d.transactions_behind} transactions behind` : ""),
      el("div", {}, "state: ", d.lag_state || "–", " · Seconds_Behind_Master ",
        r ? seconds(r.metrics.seconds_behind_master) : "–",
        " · heartbeat ", r ? seconds(r.metrics.heartbeat_lag_seconds) : "–",
        " · GTID ", r ? seconds(r.metrics.gtid_lag_seconds) : "–"),
      catchUpLine(name),
      el("div", {className: "message"}, r ? r.message : "not checked yet"));
  }));
}

function renderTables() {
  const body = document.querySelector("#tables tbody");
  const rows = [];
  for (const [target, tables] of Object.entries(state.targets)) {
    for (const table of tables) {
      const checksum = result("checksum", target, table);
      const count = result("row_count", target, table);
      const cell = (r) => el("td", {},
        el("span", {className: "status", "data-status": r ? r.status : "UNKNOWN"},
          r ? r.status : "–"));
      const rowsOf = (side) => (count && count.metrics[`${side}_rows`] != null
        ? count.metrics[`${side}_rows`] : "–");
      const detail = [checksum, count].filter((r) => r && r.status !== "OK")
        .map((r) => r.message).join("; ");
      const d = checksum ? checksum.details : {};
      rows.push(el("tr", {}, el("td", {}, target), el("td", {}, table), cell(checksum),
        el("td", {}, (d.state || "–").replace("_", " ")), el("td", {}, progressText(d)),
        el("td", {}, d.last_clean_pass ? ago(d.last_clean_pass) : "never"),
        cell(count), el("td", {}, rowsOf("source")), el("td", {}, rowsOf("target")),
        el("td", {className: "message"}, differingKeys(d)),
        el("td", {className: "message"}, detail)));
    }
  }
  body.replaceChildren(...rows);
}

// Progress of the running validation pass, e.g. "42 % (12 chunks), 30 s left".
function progressText(details) {
  const p = details.progress;
  if (!p || !p.running) return details.state ? "done" : "–";
  const percent = p.percent == null ? "" : `${Math.round(p.percent)} % `;
  const left = p.eta_seconds == null ? "" : `, ${Math.round(p.eta_seconds)} s left`;
  return `${percent}(${p.chunks_done} chunks)${left}`;
}

// The first differing keys as "id=42 changed; id=7 missing on target".
function differingKeys(details) {
  const differences = details.differences || [];
  const shown = differences.slice(0, 5).map((d) =>
    Object.entries(d.key).map(([k, v]) => `${k}=${v}`).join(", ") + " " +
    d.kind.replace(/_/g, " "));
  if (differences.length > 5) shown.push(`and ${differences.length - 5} more`);
  return shown.join("; ");
}

const STATE_ORDER = {firing: 0, pending: 1, resolved: 2};

function alertFlags(a) {
  const flags = [];
  if (a.inhibited) flags.push(`inhibited by ${a.inhibited_by}`);
  if (a.silenced) flags.push(`silenced (${a.silence_id})`);
  if (a.acknowledged) flags.push(`acknowledged by ${a.acked_by}`);
  return flags.join("; ");
}

function alertActions(a) {
  if (a.state === "resolved") return el("td", {className: "actions"});
  const ack = a.acknowledged
    ? el("button", {type: "button", onclick: () => acknowledge(a, false)}, "Unack")
    : el("button", {type: "button", onclick: () => acknowledge(a, true)}, "Ack");
  const silence = el("button", {type: "button", onclick: () => silenceAlert(a)}, "Silence");
  return el("td", {className: "actions"}, ack, silence);
}

function renderAlerts() {
  const body = document.querySelector("#alerts tbody");
  const alerts = [...state.alerts.values()].sort((a, b) =>
    (a.state === b.state ? b.updated_at - a.updated_at
      : STATE_ORDER[a.state] - STATE_ORDER[b.state]));
  body.replaceChildren(...alerts.slice(0, 50).map((a) => el("tr", {},
    el("td", {}, a.state),
    el("td", {}, el("span", {className: "status",
      "data-status": a.state === "resolved" ? "OK" : a.severity}, a.severity)),
    el("td", {}, a.check), el("td", {}, a.server),
    el("td", {}, a.condition ? `${a.subject} (${a.condition})` : a.subject),
    el("td", {className: "message"}, a.message),
    el("td", {}, ago(a.started_at)),
    el("td", {className: "message"}, alertFlags(a)),
    alertActions(a))));
}

function renderSilences() {
  const body = document.querySelector("#silences tbody");
  body.replaceChildren(...state.silences.map((s) => el("tr", {},
    el("td", {}, s.check || "any"), el("td", {}, s.server || "any"),
    el("td", {}, s.subject || "any"),
    el("td", {}, new Date(s.ends_at * 1000).toLocaleString()),
    el("td", {}, s.created_by), el("td", {className: "message"}, s.comment),
    el("td", {}, el("button", {type: "button", onclick: () => endSilence(s)}, "End")))));
}

function operator() {
  const input = document.getElementById("operator");
  const name = input.value.trim();
  if (name) localStorage.setItem("encmond-operator", name);
  return name;
}

function showActionError(text) {
  document.getElementById("alert-action-error").textContent = text;
}

async function sendJSON(method, path, body) {
  const response = await authorizedFetch(path, {
    method,
    headers: {"Content-Type": "application/json", Accept: "application/json"},
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `${method} ${path}: ${response.status}`);
  return data;
}

async function act(action) {
  const by = operator();
  if (!by) {
    showActionError("Enter your name first: acknowledgements and silences record it.");
    return;
  }
  try {
    await action(by);
    showActionError("");
  } catch (error) {
    showActionError(error.message);
  }
  await loadSilences();
}

function acknowledge(a, on) {
  return act((by) => on
    ? sendJSON("POST", `api/alerts/${a.id}/ack`, {by})
    : sendJSON("DELETE", `api/alerts/${a.id}/ack?by=${encodeURIComponent(by)}`));
}

function silenceAlert(a) {
  const duration = document.getElementById("silence-duration").value;
  return act((by) => sendJSON("POST", "api/silences",
    {check: a.check, server: a.server, subject: a.subject, duration, by}));
}

function endSilence(s) {
  return act((by) => sendJSON("DELETE", `api/silences/${s.id}?by=${encodeURIComponent(by)}`));
}

async function loadSilences() {
  try {
    state.silences = (await fetchJSON("api/silences")).silences;
  } catch (error) {
    return;
  }
  renderSilences();
}

function render() {
  renderBanner();
  renderCutover();
  renderServers();
  renderReplication();
  renderTables();
  renderAlerts();
}

// With web.auth_token_file set, the API needs a Bearer token. The page prompts
// for it once, keeps it in sessionStorage, and prompts again after a 401.
function askToken() {
  if (tokenDeclined) return false;
  const token = window.prompt("encmond access token (the contents of web.auth_token_file):");
  if (!token || !token.trim()) {
    tokenDeclined = true;
    setLive("token required");
    return false;
  }
  sessionStorage.setItem(TOKEN_KEY, token.trim());
  return true;
}

// Fetch with the stored token; after a 401, prompt for a token and retry.
async function authorizedFetch(path, options = {}) {
  for (;;) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = {...(options.headers || {})};
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(path, {...options, headers});
    if (response.status !== 401) return response;
    // A concurrent request may have stored a new token meanwhile.
    if (sessionStorage.getItem(TOKEN_KEY) !== token) continue;
    sessionStorage.removeItem(TOKEN_KEY);
    if (!askToken()) return response;
  }
}

async function fetchJSON(path) {
  const response = await authorizedFetch(path, {headers: {Accept: "application/json"}});
  if (!response.ok && response.status !== 503) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

// Browsers cannot set headers on a WebSocket, so the token travels as a
// subprotocol "bearer.<token in unpadded base64url>"; the server selects "encmond".
function socketProtocols() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return ["encmond"];
  const bytes = new TextEncoder().encode(token);
  const encoded = btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return ["encmond", `bearer.${encoded}`];
}

async function drawLagChart() {
  const target = Object.keys(state.targets)[0];
  const svg = document.getElementById("lag-chart");
  if (!target) return;
  let history;
  try {
    history = await fetchJSON(`api/history?metric=lag_seconds&check=replica_lag` +
      `&server=${encodeURIComponent(target)}&subject=replication&points=300`);
  } catch (error) {
    return;
  }
  const points = history.points || [];
  if (points.length === 0) {
    svg.replaceChildren();
    return;
  }
  const maxValue = Math.max(1, ...points.map((p) => p.max));
  const span = history.until - history.since;
  const coordinates = points.map((p) =>
    `${((p.time - history.since) / span * 600).toFixed(1)},` +
    `${(120 - (p.mean / maxValue) * 115).toFixed(1)}`).join(" ");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", coordinates);
  svg.replaceChildren(line);
}

async function poll() {
  try {
    const [metrics, alerts] = await Promise.all(
      [fetchJSON("api/metrics"), fetchJSON("api/alerts?limit=100")]);
    applySnapshot({metrics, alerts: alerts.alerts});
  } catch (error) {
    // The daemon is unreachable as well; keep the last state on screen.
  }
}

function setLive(text) {
  const live = document.getElementById("live");
  live.dataset.state = text;
  live.textContent = text;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const base = location.pathname.replace(/[^/]*$/, "");
  socket = new WebSocket(`${scheme}//${location.host}${base}ws`, socketProtocols());
  socket.onopen = () => {
    backoff = 1000;
    setLive("live");
    clearInterval(pollTimer);
    pollTimer = null;
  };
  socket.onmessage = (message) => applyEvent(JSON.parse(message.data));
  socket.onclose = () => {
    setLive("reconnecting");
    if (pollTimer === null) pollTimer = setInterval(poll, POLL_INTERVAL);
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, MAX_BACKOFF);
  };
}

document.getElementById("operator").value = localStorage.getItem("encmond-operator") || "";
document.getElementById("alert-controls").addEventListener("submit", (e) => e.preventDefault());
// The first poll prompts for the token when the API needs one, before the socket opens.
poll().then(() => {
  connect();
  loadSilences();
});
setInterval(loadSilences, 30000);
setInterval(drawLagChart, 60000);
setTimeout(drawLagChart, 1500);
setInterval(() => { renderServers(); }, 10000);

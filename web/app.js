// The encmond dashboard: a snapshot over the WebSocket, then live events; the
// API polled every 5 s while the WebSocket is down. Rendering goes through
// dom.js, which puts every value into the page as text, never as HTML.

import {AlertPanel} from "./alerts.js";
import {fetchJSON, startFeed, tokenMissing} from "./api.js";
import {SERVER_SUBJECTS, renderBanner, renderServers} from "./overview.js";
import {TABLE_CHECKS} from "./tables.js";
import {TargetSections} from "./target.js";

const RENDER_DELAY = 100; // ms: events arriving together are rendered once
const VALIDATION_POLL = 5000; // ms between progress reads while a pass runs
const SILENCE_POLL = 30000; // ms: silences do not come over the WebSocket
const CLOCK_TICK = 10000; // ms between refreshes of "… ago" texts
const MAX_RESOLVED = 200; // resolved alerts kept in memory for a page open for weeks
// Results shown in a target's replication and cutover cards.
const TARGET_SUBJECTS = new Set(["replica_lag/replication", "replica_lag/catch_up",
  "cutover/verdict"]);

class State {
  constructor() {
    this.servers = []; // {name, role, address}: the source first, then the targets
    this.targets = []; // target names, as configured
    this.tables = []; // checked tables, as "schema.table"
    this.results = new Map(); // "check/server/subject" -> result
    this.alerts = new Map(); // id -> alert
    this.validation = {}; // target -> table -> check -> live validation entry
  }

  result(check, server, subject) {
    return this.results.get(`${check}/${server}/${subject}`);
  }

  resultsOf(server) {
    return [...this.results.values()].filter((r) => r.server === server);
  }

  // A server's results that no card or table column shows, sorted by check.
  otherResults(server) {
    const tables = new Set(this.tables);
    return this.resultsOf(server).filter((r) => {
      const subject = `${r.check}/${r.subject}`;
      if (r.check === "connection" || SERVER_SUBJECTS.has(subject)) return false;
      if (TARGET_SUBJECTS.has(subject)) return false;
      return !(TABLE_CHECKS.includes(r.check) && tables.has(r.subject));
    }).sort((a, b) => `${a.check}/${a.subject}`.localeCompare(`${b.check}/${b.subject}`));
  }

  // The live progress of a running validation pass of the table, if any.
  progress(target, table) {
    const checks = (this.validation[target] || {})[table] || {};
    const running = Object.values(checks).map((c) => c.progress).filter((p) => p && p.running);
    return running[0] || null;
  }

  // NOTE: the order comes from the JSON objects' key order, which JavaScript
  // keeps except for names that are array indices ("1"): those come first.
  applyMetrics(metrics) {
    const servers = metrics.servers;
    this.targets = Object.keys(metrics.targets);
    const sources = Object.keys(servers).filter((name) => servers[name].role !== "target");
    this.servers = sources.concat(this.targets.filter((name) => name in servers))
      .map((name) => ({name, role: servers[name].role, address: servers[name].address}));
    const first = metrics.targets[this.targets[0]];
    this.tables = first ? Object.keys(first.tables) : [];
    this.results = new Map(metrics.results.map((r) => [key(r), r]));
  }
}

function key(result) {
  return `${result.check}/${result.server}/${result.subject}`;
}

const state = new State();
const sections = new TargetSections(document.getElementById("targets"));
const alerts = new AlertPanel(state, (alert) => {
  state.alerts.set(alert.id, alert);
  scheduleRender({alerts: true});
});
let renderTimer = null;
// The parts that changed since the last render. Only those are rebuilt, so
// new results do not replace an alert's buttons while the operator clicks one.
const stale = {results: false, alerts: false};
let lastData = null; // epoch seconds of the last snapshot or event
let feedWasDown = false;

function render() {
  renderTimer = null;
  sections.sync(state.targets);
  renderBanner(state);
  if (stale.results) {
    renderServers(state);
    sections.render(state);
  }
  if (stale.alerts) alerts.render();
  stale.results = stale.alerts = false;
  renderUpdated();
}

// Render the changed parts soon; events that arrive together render once.
function scheduleRender({results = false, alerts = false} = {}) {
  stale.results ||= results;
  stale.alerts ||= alerts;
  if (renderTimer === null) renderTimer = setTimeout(render, RENDER_DELAY);
}

function renderAll() {
  scheduleRender({results: true, alerts: true});
}

// Resolved alerts beyond the newest few hundred leave the page's memory.
function pruneAlerts() {
  const resolved = [...state.alerts.values()].filter((a) => a.state === "resolved")
    .sort((a, b) => b.updated_at - a.updated_at);
  for (const a of resolved.slice(MAX_RESOLVED)) state.alerts.delete(a.id);
}

function renderUpdated() {
  const text = lastData === null ? "" : `updated ${new Date(lastData * 1000)
    .toLocaleTimeString()}`;
  document.getElementById("updated").textContent = text;
}

// Feed the lag charts: one sample per replica_lag result.
function chartResults(results) {
  for (const r of results) {
    if (r.check !== "replica_lag" || r.subject !== "replication") continue;
    const chart = sections.chart(r.server);
    if (chart) chart.add(r.time, r.metrics.lag_seconds);
  }
}

function applySnapshot(metrics, alertList) {
  state.applyMetrics(metrics);
  state.alerts = new Map(alertList.map((a) => [a.id, a]));
  lastData = Date.now() / 1000;
  sections.sync(state.targets);
  chartResults(metrics.results);
  renderAll();
  loadValidation();
}

function applyEvent(event) {
  lastData = Date.now() / 1000;
  if (event.type === "snapshot") {
    applySnapshot(event.metrics, event.alerts);
    markStale(false);
    if (feedWasDown) for (const chart of sections.charts()) chart.fill();
    feedWasDown = false;
  } else if (event.type === "results") {
    for (const r of event.results) state.results.set(key(r), r);
    chartResults(event.results);
    scheduleRender({results: true});
  } else if (event.type === "alert") {
    if (event.event === "dropped") state.alerts.delete(event.alert.id);
    else state.alerts.set(event.alert.id, event.alert);
    pruneAlerts();
    scheduleRender({alerts: true});
  } else if (event.type === "heartbeat") {
    renderUpdated();
  }
}

async function poll() {
  try {
    const [metrics, alertList] = await Promise.all(
      [fetchJSON("api/metrics"), fetchJSON("api/alerts?limit=100")]);
    applySnapshot(metrics, alertList.alerts);
    markStale(false);
  } catch (error) {
    // The daemon is unreachable as well: the last state stays on screen,
    // marked as old.
    markStale(true);
  }
}

// Grey out the page and show since when, while neither the WebSocket nor the
// API responds, so that an old state is not read as the current one.
function markStale(stale) {
  const notice = document.getElementById("stale");
  if (stale && notice.hidden) {
    notice.textContent = `encmond is not answering since ${new Date().toLocaleTimeString()}: ` +
      "the page shows the last state it received.";
  }
  notice.hidden = !stale;
  document.body.classList.toggle("stale", stale);
}

// Read the live progress of running validation passes, which a run's
// results show only when the run ends. Polled only while a pass runs.
async function loadValidation() {
  const running = [...state.results.values()].some((r) =>
    TABLE_CHECKS.includes(r.check) && r.details.progress && r.details.progress.running);
  if (!running) {
    if (Object.keys(state.validation).length) state.validation = {};
    return;
  }
  try {
    state.validation = (await fetchJSON("api/validation")).targets;
  } catch (error) {
    return;
  }
  scheduleRender({results: true});
}

function setLive(text) {
  const live = document.getElementById("live");
  live.dataset.state = text;
  live.textContent = text;
  if (text !== "live") feedWasDown = true;
}

// Charts draw on canvas with colours read from the stylesheet.
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
  for (const chart of sections.charts()) chart.redraw();
});

// The first poll prompts for the token when the API needs one, before the socket opens.
poll().then(() => {
  if (tokenMissing()) setLive("token required");
  startFeed({onEvent: applyEvent, poll, onState: setLive});
  alerts.loadSilences();
});
setInterval(() => alerts.loadSilences(), SILENCE_POLL);
setInterval(loadValidation, VALIDATION_POLL);
setInterval(renderAll, CLOCK_TICK);

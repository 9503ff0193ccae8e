// The top of the page: the overall state banner and one card per server.

import {badge, count, details, el, facts, rank, when, worst} from "./dom.js";

const AT_REST = {
  encrypted: "encrypted",
  attested: "encrypted (attested by the operator)",
  in_progress: "encryption in progress",
  not_visible: "not visible to SQL",
  unencrypted: "not encrypted",
};

// Results that the server cards show; other results of a server are listed
// under "other checks".
export const SERVER_SUBJECTS = new Set(["connection", "encryption/at_rest",
  "encryption/in_flight"]);

function firingAlerts(state) {
  return [...state.alerts.values()]
    .filter((a) => a.state === "firing")
    .sort((a, b) => rank(b.severity) - rank(a.severity) || b.updated_at - a.updated_at);
}

// The target section that shows an alert, for the banner's links.
function anchorOf(state, alert) {
  const index = state.targets.indexOf(alert.server);
  return index < 0 ? "#alerts" : `#target-${index}`;
}

function cutoverSummary(state) {
  const verdicts = state.targets.map((name) => [name, state.result("cutover", name, "verdict")]);
  if (verdicts.every(([, r]) => !r)) return null;
  const go = verdicts.every(([, r]) => r && r.details.go);
  const parts = verdicts.map(([name, r], index) => el("a", {href: `#cutover-${index}`},
    `${name}: `, r ? r.details.verdict : "not judged yet",
    r && !r.details.go ? ` (${count(r.details.blockers.length, "blocker")})` : ""));
  return el("div", {className: "cutover-summary"},
    badge(go ? "OK" : "CRITICAL", `Cutover ${go ? "GO" : "NO-GO"}`),
    el("span", {className: "cutover-targets"}, ...parts.flatMap((p, i) => (i ? [" · ", p] : [p]))));
}

export function renderBanner(state) {
  const banner = document.getElementById("banner");
  const results = [...state.results.values()];
  const firing = firingAlerts(state);
  const pending = [...state.alerts.values()].filter((a) => a.state === "pending");
  let status = "UNKNOWN";
  let headline = "Waiting for the first results";
  if (results.length) {
    const problems = results.filter((r) => r.status === "WARNING" || r.status === "CRITICAL");
    status = worst(firing.map((a) => a.severity).concat(problems.map((r) => r.status)));
    headline = firing.length ? `${count(firing.length, "alert")} firing`
      : problems.length ? `No alert firing, ${count(problems.length, "check")} not OK`
        : "Everything is fine: all checks OK, no alert firing";
  }
  const flags = [];
  if (pending.length) flags.push(`${pending.length} pending`);
  const acked = firing.filter((a) => a.acknowledged).length;
  if (acked) flags.push(`${acked} acknowledged`);
  const silenced = firing.filter((a) => a.silenced).length;
  if (silenced) flags.push(`${silenced} silenced`);
  banner.dataset.status = status;
  // replaceChildren would write a null as the text "null".
  banner.replaceChildren(...[
    el("div", {className: "headline"}, badge(status), " ", headline,
      flags.length ? el("span", {className: "muted"}, ` (${flags.join(", ")})`) : null),
    firing.length ? el("ul", {className: "worst"}, ...firing.slice(0, 3).map((a) =>
      el("li", {}, el("a", {href: anchorOf(state, a)}, badge(a.severity), " ",
        `${a.check} on ${a.server}`, a.subject ? ` · ${a.subject}` : "", ": ", a.message))),
    firing.length > 3 ? el("li", {}, el("a", {href: "#alerts"},
      `and ${firing.length - 3} more`)) : null) : null,
    cutoverSummary(state),
  ].filter(Boolean));
}

function connectionLine(r) {
  if (!r) return el("div", {className: "updown"}, "not checked yet");
  const m = r.metrics;
  if (m.up !== 1) return el("div", {className: "updown down"}, "down · ", r.details.error || r.message);
  return el("div", {className: "updown up"}, "up · ",
    `${(m.latency_seconds * 1000).toFixed(1)} ms · `, r.details.version);
}

// Green only for encryption seen; a plain fact that does not alert is grey.
function factStatus(r, encrypted) {
  if (encrypted) return r.status;
  return r.status === "OK" ? "UNKNOWN" : r.status;
}

function atRest(r) {
  if (!r) return null;
  const verdict = r.details.verdict;
  const encrypted = verdict === "encrypted" || verdict === "attested";
  return details(`at-rest:${r.server}`,
    badge(factStatus(r, encrypted), AT_REST[verdict] || verdict || r.status),
    el("div", {className: "evidence"}, r.message));
}

function inFlight(r, role) {
  if (!r) return null;
  const channel = r.details.channel;
  if (role !== "target" || !channel) return null;
  const text = channel.cipher ? `TLS ${channel.cipher}` : "no TLS";
  return details(`in-flight:${r.server}`, badge(factStatus(r, Boolean(channel.cipher)), text),
    el("div", {className: "evidence"}, r.message));
}

// Results of a check that no other part of the page shows, as a short list.
export function otherChecks(results) {
  if (results.length === 0) return null;
  return el("ul", {className: "checks"}, ...results.map((r) => el("li", {},
    badge(r.status), " ", el("span", {className: "check-name"}, `${r.check} · ${r.subject}`),
    el("span", {className: "message"}, r.message))));
}

function serverCard(state, server) {
  const r = state.result("connection", server.name, server.name);
  const rest = state.result("encryption", server.name, "at_rest");
  const flight = state.result("encryption", server.name, "in_flight");
  const status = r ? r.status : "UNKNOWN";
  const up = r && r.metrics.up === 1;
  const others = server.role === "source" ? state.otherResults(server.name) : [];
  return el("article", {className: "card server", "data-status": status,
    "data-server": server.name},
  el("h3", {}, el("span", {}, `${server.name} (${server.role})`), badge(status)),
  connectionLine(r),
  facts([
    ["Address", server.address],
    ["TLS (encmond)", up ? r.details.tls_cipher || "off" : null],
    ["read_only", up ? (r.details.read_only ? "ON" : "OFF") : null],
    ["At rest", atRest(rest)],
    ["In flight", inFlight(flight, server.role)],
    ["Checked", r ? when(r.time) : null],
  ]),
  otherChecks(others));
}

export function renderServers(state) {
  document.getElementById("servers").replaceChildren(
    ...state.servers.map((server) => serverCard(state, server)));
}

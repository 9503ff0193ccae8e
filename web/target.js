// One section per target: replica lag with its signals, the cutover verdict,
// the lag chart, other checks and the validation table.

import {LagChart, RANGES} from "./chart.js";
import {badge, count, details, duration, el, facts, isNumber, when, worst} from "./dom.js";
import {otherChecks} from "./overview.js";
import {validationTable} from "./tables.js";

const SIGNAL_NAMES = {
  seconds_behind_master: "Seconds_Behind_Master",
  heartbeat: "heartbeat",
  gtid: "GTID",
};

// The lag's colour: by the check's thresholds, grey when the lag is unknown.
function lagStatus(r) {
  const lag = r ? r.metrics.lag_seconds : null;
  if (!isNumber(lag)) return "UNKNOWN";
  const d = r.details;
  if (isNumber(d.critical_seconds) && isNumber(d.warning_seconds)) {
    if (lag >= d.critical_seconds) return "CRITICAL";
    return lag >= d.warning_seconds ? "WARNING" : "OK";
  }
  return r.status;
}

function signal(name, value, note, driving) {
  return el("div", {className: driving ? "signal driving" : "signal",
    title: driving ? "this signal sets the lag" : ""},
  el("div", {className: "signal-name"}, name),
  el("div", {className: "signal-value"}, value),
  note ? el("div", {className: "muted"}, note) : null);
}

function signals(r) {
  const m = r.metrics;
  const d = r.details;
  const heartbeat = d.heartbeat_error ? "unreadable"
    : isNumber(m.heartbeat_lag_seconds) ? duration(m.heartbeat_lag_seconds)
      : d.heartbeat ? "no reading" : "not configured";
  const behind = isNumber(m.transactions_behind) ? count(m.transactions_behind, "transaction")
    : "unknown";
  return el("div", {className: "signals"},
    signal(SIGNAL_NAMES.seconds_behind_master,
      isNumber(m.seconds_behind_master) ? duration(m.seconds_behind_master) : "NULL",
      null, d.lag_signal === "seconds_behind_master"),
    signal(SIGNAL_NAMES.heartbeat, heartbeat,
      isNumber(m.heartbeat_precision_seconds)
        ? `± ${duration(m.heartbeat_precision_seconds)}` : null,
      d.lag_signal === "heartbeat"),
    signal(`${SIGNAL_NAMES.gtid} behind`, behind,
      isNumber(m.gtid_lag_seconds) ? `about ${duration(m.gtid_lag_seconds)}` : null,
      d.lag_signal === "gtid"));
}

function thread(running, stateText) {
  return el("span", {}, badge(running === "Yes" ? "OK" : "CRITICAL", running || "No"),
    stateText ? ` ${stateText}` : "");
}

function threadErrors(d) {
  const errors = [];
  if (d.last_io_errno) errors.push(`IO error ${d.last_io_errno}: ${d.last_io_error}`);
  if (d.last_sql_errno) errors.push(`SQL error ${d.last_sql_errno}: ${d.last_sql_error}`);
  return errors.length ? el("div", {className: "error"}, ...errors.map((e) => el("div", {}, e)))
    : null;
}

function catchUp(r) {
  if (!r) return null;
  const m = r.metrics;
  const rate = isNumber(m.lag_rate) ? m.lag_rate * 60 : null;
  // Earlier samples in the window can give a slope while the lag is 0 now.
  const trend = m.eta_seconds === 0 ? "none, caught up"
    : rate === null ? "needs more samples"
    : Math.abs(rate) < 0.05 ? "steady"
      : `${rate < 0 ? "shrinks" : "grows"} by ${duration(Math.abs(rate))} per min`;
  return el("div", {className: "catch-up"},
    el("h4", {}, "Catch-up ", badge(r.status)),
    facts([
      ["Lag trend", trend],
      ["ETA", isNumber(m.eta_seconds) ? (m.eta_seconds === 0 ? "caught up"
        : duration(m.eta_seconds)) : "none (not catching up)"],
      ["Binlog retention", r.details.retention_setting],
    ]),
    r.status === "OK" ? null : el("div", {className: "warning"}, r.message));
}

function replicationCard(state, target) {
  const r = state.result("replica_lag", target, "replication");
  const catchUpResult = state.result("replica_lag", target, "catch_up");
  const status = r ? r.status : "UNKNOWN";
  const lag = r ? r.metrics.lag_seconds : null;
  const known = isNumber(lag);
  const d = r ? r.details : {};
  const reason = !r ? "not checked yet" : !known || status !== "OK" ? r.message : null;
  return el("article", {className: "card replication", "data-status": status},
    el("h3", {}, el("span", {}, "Replica lag"), badge(status)),
    el("div", {className: "lag", "data-status": lagStatus(r)}, known ? duration(lag) : "unknown"),
    reason ? el("div", {className: "reason"}, reason) : null,
    r ? el("div", {className: "muted"}, `state: ${d.lag_state || "unknown"}`,
      d.lag_signal ? ` · from ${SIGNAL_NAMES[d.lag_signal] || d.lag_signal}` : "",
      isNumber(d.warning_seconds) ? ` · warning at ${duration(d.warning_seconds)}, ` +
        `critical at ${duration(d.critical_seconds)}` : "") : null,
    r && r.metrics.io_running !== undefined ? signals(r) : null,
    r && d.io_running !== undefined ? facts([
      ["IO thread", thread(d.io_running, d.io_state)],
      ["SQL thread", thread(d.sql_running, d.sql_state)],
      ["GTID applied", d.gtid_slave_pos],
      ["Source GTID", d.source_gtid_binlog_pos],
    ]) : null,
    threadErrors(d),
    catchUp(catchUpResult),
    r ? el("div", {className: "muted"}, "checked ", when(r.time)) : null);
}

function blocker(b) {
  return el("li", {},
    el("strong", {}, b.condition), el("div", {}, b.problem),
    el("div", {className: "clears"}, "Clears when: ", b.clears));
}

function cutoverCard(state, target, index) {
  const r = state.result("cutover", target, "verdict");
  if (!r || !r.details.verdict) return null;
  const v = r.details;
  return el("article", {className: "card cutover", id: `cutover-${index}`,
    "data-status": v.go ? "OK" : "CRITICAL", "data-verdict": v.verdict},
  el("h3", {}, el("span", {}, "Cutover"), badge(v.go ? "OK" : "CRITICAL", v.verdict)),
  v.blockers.length ? el("ol", {className: "blockers"}, ...v.blockers.map(blocker))
    : el("div", {}, "Nothing blocks the cutover."),
  (v.notes || []).length ? el("ul", {className: "notes"}, ...v.notes.map((n) => el("li", {}, n)))
    : null,
  details(`facts:${target}`, `All ${count(v.facts.length, "condition")}`,
    el("ul", {className: "conditions"}, ...v.facts.map((f) => el("li", {},
      badge(f.ok ? "OK" : "CRITICAL", f.ok ? "met" : "not met"), " ",
      el("strong", {}, f.condition), ": ", f.observed)))),
  el("div", {className: "muted"}, "judged ", when(r.time)));
}

// The parts of a section that are built once, so that the chart survives
// re-renders and keeps its zoom.
function skeleton(target, index, onRange) {
  const plot = el("div", {className: "plot"});
  const status = el("span", {className: "chart-status muted"});
  const buttons = Object.entries(RANGES).map(([name, range]) => el("button", {
    type: "button", "data-range": name, "aria-pressed": String(name === "24h"),
    onclick: () => onRange(name)}, range.label));
  const parts = {
    head: el("h2", {}),
    cards: el("div", {className: "cards"}),
    checks: el("div", {className: "other-checks"}),
    tables: el("div", {className: "tables"}),
    buttons,
    plot,
    status,
  };
  parts.section = el("section", {className: "target", id: `target-${index}`,
    "data-target": target},
  parts.head, parts.cards,
  el("figure", {className: "chart"},
    el("figcaption", {}, el("span", {}, "Replica lag, mean with min–max band"),
      el("span", {className: "ranges"}, ...buttons), status),
    plot),
  parts.checks, parts.tables);
  return parts;
}

// Keeps one section per target, in the configured order.
export class TargetSections {
  constructor(container) {
    this.container = container;
    this.sections = new Map(); // target -> {parts, chart}
  }

  sync(targets) {
    const names = [...this.sections.keys()];
    if (names.length === targets.length && names.every((n, i) => n === targets[i])) return;
    for (const {chart} of this.sections.values()) chart.resizer.disconnect();
    this.sections.clear();
    targets.forEach((target, index) => {
      const parts = skeleton(target, index, (range) => this.setRange(target, range));
      const chart = new LagChart(target, parts.plot, (text) => {
        parts.status.textContent = text;
      });
      this.sections.set(target, {parts, chart});
    });
    this.container.replaceChildren(...[...this.sections.values()].map((s) => s.parts.section));
    for (const {chart} of this.sections.values()) chart.load();
  }

  async setRange(target, range) {
    const {parts, chart} = this.sections.get(target);
    for (const button of parts.buttons) {
      button.setAttribute("aria-pressed", String(button.dataset.range === range));
    }
    await chart.setRange(range);
  }

  charts() {
    return [...this.sections.values()].map((s) => s.chart);
  }

  chart(target) {
    const section = this.sections.get(target);
    return section ? section.chart : null;
  }

  render(state) {
    state.targets.forEach((target, index) => {
      const {parts} = this.sections.get(target);
      const own = state.resultsOf(target);
      const status = own.length ? worst(own.map((r) => r.status)) : "UNKNOWN";
      parts.section.dataset.status = status;
      parts.head.replaceChildren(el("span", {}, `Target ${target}`), badge(status));
      parts.cards.replaceChildren(replicationCard(state, target),
        ...[cutoverCard(state, target, index)].filter(Boolean));
      const others = state.otherResults(target);
      parts.checks.replaceChildren(...(others.length
        ? [el("h3", {}, "Other checks"), otherChecks(others)] : []));
      parts.tables.replaceChildren(el("h3", {}, "Tables"), validationTable(state, target));
    });
  }
}

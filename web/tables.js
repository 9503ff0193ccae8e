// The validation table of one target: a row per checked table.

import {badge, count, details, duration, el, isNumber, when} from "./dom.js";

// Table-level checks shown as columns; their results are not listed again
// under "other checks".
export const TABLE_CHECKS = ["checksum", "row_count", "schema"];

const STATE_LABELS = {
  match: "matching",
  in_progress: "in progress",
  in_flux: "in flux",
  diverged: "diverged",
  behind: "target behind",
  missing: "missing",
  not_comparable: "not comparable",
};
// States whose result message only repeats what the row's cells show.
const SELF_EXPLAINED = new Set(["match", "in_progress"]);
const SHOWN_KEYS = 50; // differing keys listed per table; the rest are counted

function stateCell(r, label) {
  if (!r) return el("td", {"data-label": label}, el("span", {className: "muted"}, "–"));
  const state = r.details.state;
  const text = state ? STATE_LABELS[state] || state.replace(/_/g, " ")
    : r.status === "OK" ? "same" : r.status;
  return el("td", {"data-label": label, "data-state": state || ""}, badge(r.status, text),
    r.details.stale ? el("span", {className: "muted"}, " stale") : null);
}

function progressText(progress) {
  if (!progress) return "–";
  if (!progress.running) return "done";
  const parts = [];
  if (isNumber(progress.percent)) parts.push(`${Math.round(progress.percent)} %`);
  parts.push(count(progress.chunks_done, "chunk"));
  if (isNumber(progress.eta_seconds)) parts.push(`${duration(progress.eta_seconds)} left`);
  return parts.join(" · ");
}

function rowCounts(countResult, checksum) {
  if (countResult && isNumber(countResult.metrics.source_rows)) {
    return [countResult.metrics.source_rows, countResult.metrics.target_rows];
  }
  const last = (checksum && checksum.details.last_pass) || {};
  return [last.source_rows, last.target_rows];
}

function keyText(difference) {
  const key = Object.entries(difference.key).map(([k, v]) => `${k}=${v}`).join(", ");
  return `${key} ${difference.kind.replace(/_/g, " ")}`;
}

function differingKeys(target, table, r) {
  const differences = r.details.differences || [];
  const ranges = r.details.diverged_ranges || [];
  const items = differences.slice(0, SHOWN_KEYS).map((d) => el("li", {}, keyText(d)));
  if (differences.length > SHOWN_KEYS) {
    items.push(el("li", {className: "muted"}, `and ${differences.length - SHOWN_KEYS} more`));
  }
  return details(`keys:${target}:${table}`,
    `${count(differences.length, "differing row")}`,
    el("ul", {className: "keys"}, ...items),
    ranges.length ? el("div", {className: "muted"}, "In key ranges: ", ranges.join("; "))
      : null);
}

// The evidence for a row: the differing keys, else each distinct message of
// a check whose state the cells do not explain.
function evidence(target, table, results) {
  const checksum = results[0];
  if (checksum && (checksum.details.differences || []).length) {
    return differingKeys(target, table, checksum);
  }
  const messages = new Set();
  for (const r of results) {
    if (r && !(r.status === "OK" && SELF_EXPLAINED.has(r.details.state ?? "match"))) {
      messages.add(r.message);
    }
  }
  return [...messages].map((m) => el("div", {}, m));
}

function tableRow(state, target, table) {
  const results = TABLE_CHECKS.map((check) => state.result(check, target, table));
  const [checksum, rowCount, schema] = results;
  const main = checksum || rowCount;
  const live = state.progress(target, table);
  const progress = live || (main && main.details.progress);
  const [sourceRows, targetRows] = rowCounts(rowCount, checksum);
  return el("tr", {"data-table": table},
    el("td", {className: "table-name", "data-label": "Table"}, table),
    stateCell(checksum, "Checksum"),
    stateCell(rowCount, "Row count"),
    stateCell(schema, "Schema"),
    el("td", {"data-label": "Progress"}, progressText(progress)),
    el("td", {"data-label": "Last clean pass"},
      main ? when(main.details.last_clean_pass) : "–"),
    el("td", {"data-label": "Source rows", className: "number"}, sourceRows ?? "–"),
    el("td", {"data-label": "Target rows", className: "number"}, targetRows ?? "–"),
    el("td", {className: "evidence", "data-label": "Differences"},
      evidence(target, table, results)));
}

export function validationTable(state, target) {
  const head = ["Table", "Checksum", "Row count", "Schema", "Progress", "Last clean pass",
    "Source rows", "Target rows", "Differences"];
  if (state.tables.length === 0) {
    return el("p", {className: "muted"}, "No tables configured (the tables key).");
  }
  return el("table", {className: "validation responsive"},
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {scope: "col"}, h)))),
    el("tbody", {}, ...state.tables.map((table) => tableRow(state, target, table))));
}

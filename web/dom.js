// Building page elements and formatting values for the encmond dashboard.
// Every value reaches the page as a text node or through an attribute
// setter, never as HTML, so names from databases and plugins cannot inject
// markup.

const RANK = {OK: 0, UNKNOWN: 1, WARNING: 2, CRITICAL: 3};

// Return a new element. Keys of attrs starting with "data-" or "aria-" and
// the key "role" become attributes, the others properties. Each child is a
// Node or a value shown as text; null and undefined are skipped.
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key.startsWith("data-") || key.startsWith("aria-") || key === "role") {
      node.setAttribute(key, value);
    } else {
      node[key] = value;
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A coloured status word, such as OK or CRITICAL.
export function badge(status, text) {
  return el("span", {className: "badge", "data-status": status || "UNKNOWN"},
    text === undefined ? status || "UNKNOWN" : text);
}

// <details> elements keep their open state across re-renders: each has a
// stable key, and the keys of the open ones are kept here.
const openDetails = new Set();

export function details(key, summary, ...body) {
  const node = el("details", {open: openDetails.has(key), "data-key": key},
    el("summary", {}, summary), ...body);
  node.addEventListener("toggle", () => {
    if (node.open) openDetails.add(key);
    else openDetails.delete(key);
  });
  return node;
}

export function worst(statuses) {
  return statuses.reduce((a, b) => (RANK[b] > RANK[a] ? b : a), "OK");
}

export function rank(status) {
  return RANK[status] ?? 1;
}

export function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

// A duration in seconds as "0 s", "0.25 s", "42 s", "5 min 3 s" or "2 h 5 min".
export function duration(seconds) {
  if (!isNumber(seconds)) return "unknown";
  const value = Math.abs(seconds);
  const sign = seconds < 0 ? "-" : "";
  if (value < 10) return `${sign}${Number(value.toFixed(2))} s`;
  if (value < 120) return `${sign}${Math.round(value)} s`;
  if (value < 7200) {
    const minutes = Math.floor(value / 60);
    const rest = Math.round(value % 60);
    return `${sign}${minutes} min${rest ? ` ${rest} s` : ""}`;
  }
  if (value < 172800) {
    const hours = Math.floor(value / 3600);
    const rest = Math.round((value % 3600) / 60);
    return `${sign}${hours} h${rest ? ` ${rest} min` : ""}`;
  }
  return `${sign}${(value / 86400).toFixed(1)} d`;
}

// How long ago an epoch time was, as "12 s ago".
export function ago(epoch) {
  if (!isNumber(epoch)) return "never";
  const delta = Math.max(0, Date.now() / 1000 - epoch);
  return delta < 1 ? "just now" : `${duration(Math.round(delta))} ago`;
}

export function clock(epoch) {
  return new Date(epoch * 1000).toLocaleString();
}

// A time shown as "12 s ago" with the exact time on hover.
export function when(epoch) {
  if (!isNumber(epoch)) return el("span", {}, "never");
  return el("time", {dateTime: new Date(epoch * 1000).toISOString(), title: clock(epoch)},
    ago(epoch));
}

export function count(n, noun) {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

// A definition list of [term, value] pairs; pairs with a null value are left out.
export function facts(pairs) {
  const items = [];
  for (const [term, value] of pairs) {
    if (value === null || value === undefined) continue;
    items.push(el("dt", {}, term), el("dd", {}, value));
  }
  return el("dl", {className: "facts"}, ...items);
}

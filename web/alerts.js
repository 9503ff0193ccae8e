// Active and recent alerts with their flags, acknowledgement and silences.
// Every action records the operator's name and an optional comment.

import {fetchJSON, sendJSON} from "./api.js";
import {badge, clock, el, when} from "./dom.js";

const STATE_ORDER = {firing: 0, pending: 1, resolved: 2};
const RECENT_RESOLVED = 20; // resolved alerts shown below the open ones
const OPERATOR_KEY = "encmond-operator";

function flags(a) {
  const shown = [];
  if (a.state === "pending") shown.push(badge("UNKNOWN", "pending"));
  if (a.inhibited) shown.push(el("span", {className: "flag"}, `inhibited by ${a.inhibited_by}`));
  if (a.silenced) shown.push(el("span", {className: "flag"}, `silenced (#${a.silence_id})`));
  if (a.acknowledged) {
    shown.push(el("span", {className: "flag"}, `acknowledged by ${a.acked_by}`,
      a.ack_comment ? `: ${a.ack_comment}` : ""));
  }
  return shown;
}

function operator() {
  const name = document.getElementById("operator").value.trim();
  if (name) localStorage.setItem(OPERATOR_KEY, name);
  return name;
}

function comment() {
  return document.getElementById("action-comment").value.trim();
}

function showActionMessage(text) {
  document.getElementById("alert-action-message").textContent = text;
}

export class AlertPanel {
  constructor(state, onChange) {
    this.state = state;
    this.onChange = onChange; // called with an alert changed by an action
    this.silences = [];
    document.getElementById("operator").value = localStorage.getItem(OPERATOR_KEY) || "";
    document.getElementById("alert-controls")
      .addEventListener("submit", (event) => event.preventDefault());
  }

  // Run an action that needs the operator's name; report its error.
  async act(action) {
    const by = operator();
    if (!by) {
      showActionMessage("Enter your name first: acknowledgements and silences record it.");
      document.getElementById("operator").focus();
      return;
    }
    try {
      await action(by, comment());
      showActionMessage("");
      document.getElementById("action-comment").value = "";
    } catch (error) {
      showActionMessage(error.message);
    }
    await this.loadSilences();
  }

  // The alert changes on the page at once; the feed brings the same change.
  acknowledge(a, on) {
    return this.act(async (by, text) => {
      const changed = await (on
        ? sendJSON("POST", `api/alerts/${a.id}/ack`, {by, comment: text})
        : sendJSON("DELETE", `api/alerts/${a.id}/ack`, {by}));
      this.onChange(changed);
    });
  }

  silence(a) {
    const duration = document.getElementById("silence-duration").value;
    return this.act((by, text) => sendJSON("POST", "api/silences", {check: a.check,
      server: a.server, subject: a.subject, duration, by, comment: text}));
  }

  endSilence(s) {
    return this.act((by) => sendJSON("DELETE", `api/silences/${s.id}`, {by}));
  }

  async loadSilences() {
    try {
      this.silences = (await fetchJSON("api/silences")).silences;
    } catch (error) {
      return; // the feed's indicator already shows that the daemon is unreachable
    }
    this.renderSilences();
  }

  actions(a) {
    if (a.state === "resolved") return el("td", {className: "actions"});
    return el("td", {className: "actions", "data-label": "Actions"},
      el("button", {type: "button", onclick: () => this.acknowledge(a, !a.acknowledged)},
        a.acknowledged ? "Unack" : "Ack"),
      a.silenced ? null : el("button", {type: "button", onclick: () => this.silence(a)},
        "Silence"));
  }

  row(a) {
    return el("tr", {"data-alert": a.id, "data-state": a.state},
      el("td", {"data-label": "State"}, a.state, " ", ...flags(a)),
      el("td", {"data-label": "Severity"},
        badge(a.state === "resolved" ? "OK" : a.severity, a.severity)),
      el("td", {"data-label": "Check"}, a.check),
      el("td", {"data-label": "Server"}, a.server),
      el("td", {"data-label": "Subject"}, a.condition ? `${a.subject} (${a.condition})`
        : a.subject),
      el("td", {className: "message", "data-label": "Message"}, a.message),
      el("td", {"data-label": a.state === "resolved" ? "Resolved" : "Since"},
        when(a.state === "resolved" ? a.resolved_at : a.fired_at || a.started_at)),
      this.actions(a));
  }

  render() {
    const all = [...this.state.alerts.values()].sort((a, b) =>
      STATE_ORDER[a.state] - STATE_ORDER[b.state] || b.updated_at - a.updated_at);
    const open = all.filter((a) => a.state !== "resolved");
    const resolved = all.filter((a) => a.state === "resolved").slice(0, RECENT_RESOLVED);
    document.querySelector("#alerts tbody").replaceChildren(
      ...open.concat(resolved).map((a) => this.row(a)));
    document.getElementById("alerts-empty").hidden = all.length > 0;
  }

  renderSilences() {
    document.getElementById("silences-section").hidden = this.silences.length === 0;
    document.querySelector("#silences tbody").replaceChildren(...this.silences.map((s) =>
      el("tr", {},
        el("td", {"data-label": "Matches"}, [s.check, s.server, s.subject]
          .map((part) => part || "any").join(" · ")),
        el("td", {"data-label": "Until"}, clock(s.ends_at)),
        el("td", {"data-label": "By"}, s.created_by),
        el("td", {className: "message", "data-label": "Comment"}, s.comment),
        el("td", {className: "actions"},
          el("button", {type: "button", onclick: () => this.endSilence(s)}, "End")))));
  }
}

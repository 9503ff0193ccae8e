// Talking to the daemon: the API with its token, and the WebSocket feed with
// reconnects and polling while the feed is down.

const TOKEN_KEY = "encmond.token";
const POLL_INTERVAL = 5000; // ms between API polls while the WebSocket is down
const FIRST_BACKOFF = 1000; // ms before the first reconnect, doubled per failure
const MAX_BACKOFF = 30000;

let tokenDeclined = false;

// With web.auth_token_file set, the API needs a Bearer token. The page prompts
// for it once, keeps it in sessionStorage, and prompts again after a 401.
function askToken() {
  if (tokenDeclined) return false;
  const token = window.prompt("encmond access token (the contents of web.auth_token_file):");
  if (!token || !token.trim()) {
    tokenDeclined = true;
    return false;
  }
  sessionStorage.setItem(TOKEN_KEY, token.trim());
  return true;
}

export function tokenMissing() {
  return tokenDeclined;
}

// Fetch with the stored token; after a 401, prompt for a token and retry.
export async function authorizedFetch(path, options = {}) {
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

// GET a JSON document. A 503 body is returned too, because /api/health sends its
// report with 503 when a server is down.
export async function fetchJSON(path) {
  const response = await authorizedFetch(path, {headers: {Accept: "application/json"}});
  if (!response.ok && response.status !== 503) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error || `GET ${path} failed with HTTP ${response.status}`);
  }
  return response.json();
}

// Send a JSON body (the alert routes take only JSON) and return the reply.
export async function sendJSON(method, path, body) {
  const response = await authorizedFetch(path, {
    method,
    headers: {"Content-Type": "application/json", Accept: "application/json"},
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(data.error || `${method} ${path} failed with HTTP ${response.status}`);
  }
  return data;
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

// Keep a WebSocket to /ws open and hand each event to onEvent. While it is
// down, reconnect with exponential backoff and call poll every 5 s.
// onState gets "live", "reconnecting" or "token required".
export function startFeed({onEvent, poll, onState}) {
  let backoff = FIRST_BACKOFF;
  let pollTimer = null;

  function stopPolling() {
    clearInterval(pollTimer);
    pollTimer = null;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const base = location.pathname.replace(/[^/]*$/, "");
    const socket = new WebSocket(`${scheme}//${location.host}${base}ws`, socketProtocols());
    socket.onopen = () => {
      backoff = FIRST_BACKOFF;
      stopPolling();
      onState("live");
    };
    socket.onmessage = (message) => onEvent(JSON.parse(message.data));
    socket.onclose = () => {
      onState(tokenDeclined ? "token required" : "reconnecting");
      if (pollTimer === null) pollTimer = setInterval(poll, POLL_INTERVAL);
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF);
    };
  }

  connect();
}

// The HTTP API, with the caller's token. The token lives in sessionStorage (this tab only) and
// is sent in the Authorization header, never in a URL.

const TOKEN_KEY = "jobs.console.token";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || (body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "http_" + status;
    this.details = error.details || {};
  }
}

/** Take `#token=...` from the address (then drop it from history), else the tab's token. */
export function takeToken(location, history, storage) {
  const fragment = location.hash.startsWith("#") ? location.hash.slice(1) : "";
  const params = new URLSearchParams(fragment.startsWith("token=") ? fragment : "");
  const given = params.get("token");
  if (given) {
    storage.setItem(TOKEN_KEY, given.trim());
    history.replaceState(null, "", location.pathname + location.search + "#/");
  }
  return storage.getItem(TOKEN_KEY);
}

export function saveToken(storage, token) {
  if (token) storage.setItem(TOKEN_KEY, token.trim());
  else storage.removeItem(TOKEN_KEY);
}

/** The claims of a JWT, for the page's own choices only (the server decides what is allowed). */
export function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = part + "=".repeat((4 - (part.length % 4)) % 4);
    const json = decodeURIComponent(
      Array.from(atob(padded), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
    );
    const claims = JSON.parse(json);
    return { sub: String(claims.sub || ""), role: String(claims.role || ""), exp: Number(claims.exp) || null };
  } catch {
    return { sub: "", role: "", exp: null };
  }
}

export class Api {
  constructor(token, onUnauthorized) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  async call(method, path, { query, body } = {}) {
    const url = new URL(path, window.location.origin);
    for (const [name, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
    }
    const headers = { Authorization: `Bearer ${this.token}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (error) {
      throw new ApiError(0, { error: { code: "network", message: `the service did not answer (${error.message})` } });
    }
    if (response.status === 204) return null;
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      const failure = new ApiError(response.status, data);
      if (response.status === 401 && this.onUnauthorized) this.onUnauthorized(failure);
      throw failure;
    }
    return data;
  }

  get(path, query) {
    return this.call("GET", path, { query });
  }
  post(path, body) {
    return this.call("POST", path, { body: body === undefined ? {} : body });
  }
  patch(path, body) {
    return this.call("PATCH", path, { body });
  }
  delete(path, query) {
    return this.call("DELETE", path, { query });
  }
}

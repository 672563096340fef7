// The console's only way to the server: POST /graphql (session cookie + CSRF header) and /auth/*.
// Nothing here knows more than a frontend team would: scope, masking and audit stay on the server.

function cookie(name) {
  const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : null;
}

export class ApiError extends Error {
  constructor(message, status, code) { super(message); this.status = status; this.code = code; }
}

export async function gql(query, variables = {}) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  const csrf = cookie("aidgraph_csrf");
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const response = await fetch("/graphql", { method: "POST", headers, credentials: "same-origin",
    body: JSON.stringify({ query, variables }) });
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (response.status === 401 || response.status === 403) {
    const e = body && body.errors && body.errors[0];
    throw new ApiError(e ? e.message : response.statusText, response.status, e && e.extensions && e.extensions.code);
  }
  if (!response.ok || !body) throw new ApiError(`HTTP ${response.status}`, response.status, "HTTP");
  if (body.errors && body.errors.length) {
    const e = body.errors[0];
    throw new ApiError(e.message, 200, (e.extensions && e.extensions.code) || "GRAPHQL");
  }
  return body.data;
}

export async function login(username, password) {
  const response = await fetch("/auth/login", { method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify({ username, password }) });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const e = (body.errors && body.errors[0]) || {};
    throw new ApiError(e.message || response.statusText, response.status, e.extensions && e.extensions.code);
  }
  return body;
}

export async function logout() {
  await fetch("/auth/logout", { method: "POST", credentials: "same-origin" });
}

export async function changePassword(currentPassword, newPassword) {
  const headers = { "Content-Type": "application/json" };
  const csrf = cookie("aidgraph_csrf");
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const response = await fetch("/auth/password", { method: "POST", credentials: "same-origin", headers,
    body: JSON.stringify({ currentPassword, newPassword }) });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const e = (body.errors && body.errors[0]) || {};
    throw new ApiError(e.message || response.statusText, response.status, e.extensions && e.extensions.code);
  }
  return body;
}

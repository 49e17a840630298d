// The console's one way to call FrostGate: the same HTTP API keys use, with the session cookie and,
// on every state-changing request, the session's CSRF token.

let csrfToken = '';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** Sends the browser to sign in again (a session that ended: logout, expiry, revocation). */
export function signInAgain(reason) {
  sessionStorage.setItem('fg-signed-out-reason', reason);
  location.assign('/login');
}

export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrfToken;
  const res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) {
    // Read to the end first: leaving the page mid-answer would abort the request.
    await res.text();
    signInAgain('Your session ended; sign in again.');
    throw new ApiError(401, { detail: 'session ended' });
  }
  if (res.status === 204) return null;
  const text = await res.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!res.ok) throw new ApiError(res.status, parsed || {});
  return parsed;
}

/** The signed-in person and the CSRF token every later change carries. */
export async function loadSession() {
  const session = await api('GET', '/console/session');
  csrfToken = session.csrf_token;
  return session;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

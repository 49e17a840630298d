/**
 * The access cookie: the learner's access token, moved out of the URL on first load. HttpOnly
 * (page scripts never see it), SameSite=Strict (no other site can make the browser send it),
 * scoped to the one scenario's path, and gone when the token expires.
 */
export const ACCESS_COOKIE = 'fg_access';

export function accessBasePath(scenarioId: string): string {
  return `/v1/access/${scenarioId}`;
}

export function accessCookie(token: string, scenarioId: string, maxAgeS: number, secure: boolean): string {
  const parts = [
    `${ACCESS_COOKIE}=${token}`,
    `Path=${accessBasePath(scenarioId)}`,
    `Max-Age=${Math.max(0, Math.floor(maxAgeS))}`,
    'HttpOnly',
    'SameSite=Strict',
  ];
  if (secure) parts.push('Secure');
  return parts.join('; ');
}

/** The value of `name` in a Cookie header (first occurrence), undefined when absent. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1) continue;
    if (pair.slice(0, eq).trim() === name) {
      const value = pair.slice(eq + 1).trim();
      return value === '' ? undefined : value;
    }
  }
  return undefined;
}

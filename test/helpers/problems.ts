/**
 * The first entry of a problem's `errors`, in either shape the API answers: problem+json's array of
 * `{path, message}`, or the one string `"<path>: <message>"` of bouncer routes, which answer in
 * CrowdSec's shape (docs/bouncers.md).
 */
export function firstError(body: { errors?: unknown }): { path: string; message: string } | undefined {
  const errors = body.errors;
  if (typeof errors === 'string') {
    const at = errors.indexOf(': ');
    return at === -1 ? { path: '', message: errors } : { path: errors.slice(0, at), message: errors.slice(at + 2) };
  }
  if (Array.isArray(errors) && errors.length > 0) return errors[0] as { path: string; message: string };
  return undefined;
}

import type { DnsCheckSpec, HttpCheckSpec } from '../../templates/checks.js';
import { compileRegex, excerpt, fail, pass, vantageOf, type CheckContext, type CheckVerdict } from './context.js';

export interface DigResult {
  readonly status: string | undefined;
  readonly answers: ReadonlyArray<{ readonly type: string; readonly value: string }>;
}

/** The status and ANSWER section of dig's default output. */
export function parseDig(text: string): DigResult {
  const status = /->>HEADER<<-.*status: ([A-Z]+)/.exec(text)?.[1];
  const answers: Array<{ type: string; value: string }> = [];
  let inAnswer = false;
  for (const line of text.split('\n')) {
    if (line.startsWith(';; ANSWER SECTION:')) {
      inAnswer = true;
      continue;
    }
    if (inAnswer) {
      if (line.trim() === '' || line.startsWith(';')) {
        inAnswer = false;
        continue;
      }
      const cols = line.trim().split(/\s+/);
      if (cols.length >= 5) answers.push({ type: cols[3]!, value: cols.slice(4).join(' ') });
    }
  }
  return { status, answers };
}

const stripDot = (v: string) => v.replace(/\.$/, '').replace(/^"|"$/g, '');

export async function dnsCheck(spec: DnsCheckSpec, ctx: CheckContext, timeoutMs: number): Promise<CheckVerdict> {
  const record = spec.record ?? 'A';
  const seconds = Math.max(1, Math.floor(timeoutMs / 1000) - 1);
  const out = await ctx.run(
    spec.from,
    ['/usr/bin/dig', `+time=${seconds}`, '+tries=1', '-p', String(spec.port ?? 53), `@${spec.server}`, spec.name, record],
    vantageOf(spec),
    timeoutMs,
  );
  const parsed = parseDig(out.stdout);
  if (parsed.status === undefined) return fail(`no answer from ${spec.server}: ${excerpt(out.stdout + out.stderr)}`);
  const wantStatus = spec.rcode ?? 'NOERROR';
  if (parsed.status !== wantStatus) return fail(`${spec.name} ${record} @${spec.server}: status ${parsed.status}, expected ${wantStatus}`);
  const values = parsed.answers.filter((a) => a.type === record).map((a) => stripDot(a.value));
  const shown = values.join(', ') || 'no answers';
  for (const v of spec.expect ?? [])
    if (!values.includes(stripDot(v))) return fail(`${spec.name} ${record} @${spec.server} is ${shown}, expected ${v} among them`);
  if (spec.expect_regex !== undefined && !values.some((v) => compileRegex(spec.expect_regex!).test(v)))
    return fail(`${spec.name} ${record} @${spec.server} is ${shown}, none matches /${spec.expect_regex}/`);
  if (wantStatus === 'NOERROR' && spec.expect === undefined && spec.expect_regex === undefined && values.length === 0)
    return fail(`${spec.name} ${record} @${spec.server} has no ${record} answer`);
  return pass(`${spec.name} ${record} @${spec.server}: ${wantStatus}${values.length ? ` ${shown}` : ''}`);
}

const STATUS_MARK = '\n__frostgate_http_status__:';

export async function httpCheck(spec: HttpCheckSpec, ctx: CheckContext, timeoutMs: number): Promise<CheckVerdict> {
  const seconds = Math.max(1, Math.floor(timeoutMs / 1000) - 1);
  const method = spec.method ?? 'GET';
  const argv = [
    '/usr/bin/curl',
    '-sS',
    '--noproxy',
    '*',
    '--max-time',
    String(seconds),
    '--max-filesize',
    '1048576',
    ...(method === 'HEAD' ? ['-I'] : ['-X', method]),
    ...(spec.insecure ? ['-k'] : []),
    '-o',
    '-',
    '-w',
    `${STATUS_MARK}%{http_code}`,
    '--',
    spec.url,
  ];
  const out = await ctx.run(spec.from, argv, vantageOf(spec), timeoutMs);
  const at = out.stdout.lastIndexOf(STATUS_MARK);
  const status = at === -1 ? 0 : Number(out.stdout.slice(at + STATUS_MARK.length).trim());
  const body = at === -1 ? out.stdout : out.stdout.slice(0, at);
  if (out.exitCode !== 0 || status === 0) return fail(`${method} ${spec.url} failed: ${excerpt(out.stderr)}`);
  const want = spec.status ?? 200;
  if (status !== want) return fail(`${method} ${spec.url} answered ${status}, expected ${want}`);
  if (spec.body_regex !== undefined && !compileRegex(spec.body_regex).test(body))
    return fail(`${method} ${spec.url}: body does not match /${spec.body_regex}/`);
  if (spec.body_not_regex !== undefined && compileRegex(spec.body_not_regex).test(body))
    return fail(`${method} ${spec.url}: body matches /${spec.body_not_regex}/`);
  return pass(`${method} ${spec.url} answered ${status}`);
}

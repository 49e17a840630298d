// The bouncers of bench/bouncer-storm.ts, in a process of their own so that reading their
// startups (about 100 MB a round) does not stall the /defend load generator's event loop. Rounds of
// one startup per key, all at once, at most one round a second, until STORM_UNTIL_MS; prints one
// JSON line with its figures and the CPU it spent. Env: STORM_BASE, STORM_KEYS (JSON array),
// STORM_EXPECTED (decisions per startup), STORM_UNTIL_MS.
const base = process.env.STORM_BASE!;
const keys = JSON.parse(process.env.STORM_KEYS!) as string[];
const expected = Number(process.env.STORM_EXPECTED);
const untilMs = Number(process.env.STORM_UNTIL_MS);
const needle = Buffer.from('"scope":"Ip"');

function countOf(body: Buffer): number {
  let n = 0;
  for (let at = body.indexOf(needle); at !== -1; at = body.indexOf(needle, at + needle.length)) n++;
  return n;
}

const cpu0 = process.cpuUsage();
const failures: Record<string, number> = {};
const latenciesMs: number[] = [];
let rounds = 0;
let bytes = 0;
const fail = (why: string) => (failures[why] = (failures[why] ?? 0) + 1);
let nextRoundAt = Date.now();
while (Date.now() < untilMs) {
  if (Date.now() < nextRoundAt) await new Promise((resolve) => setTimeout(resolve, nextRoundAt - Date.now()));
  nextRoundAt = Date.now() + 1000;
  rounds++;
  await Promise.all(
    keys.map(async (key) => {
      const t0 = performance.now();
      try {
        const res = await fetch(`${base}/v1/decisions/stream?startup=true`, { headers: { 'x-api-key': key } });
        const body = Buffer.from(await res.arrayBuffer());
        latenciesMs.push(performance.now() - t0);
        bytes += body.length;
        if (res.status !== 200) return fail(`${res.status} ${body.subarray(0, 160).toString()}`);
        const got = countOf(body);
        if (got !== expected) fail(`200 with ${got} decisions instead of ${expected}`);
      } catch (err) {
        fail(`request failed: ${(err as Error).message}`);
      }
    }),
  );
}
const cpu = process.cpuUsage(cpu0);
process.stdout.write(`${JSON.stringify({ rounds, startups: latenciesMs.length, failures, latenciesMs, bytes, cpuS: (cpu.user + cpu.system) / 1e6 })}\n`);

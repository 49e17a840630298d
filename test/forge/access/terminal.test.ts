import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { CLOSE } from '../../../src/forge/access/protocol.js';
import { parseAsciicast, recordingsDir } from '../../../src/forge/access/recording.js';
import { type Scenario, ScenarioStore } from '../../../src/forge/orchestrator/store.js';
import { FilesystemStorage } from '../../../src/platform/storage/filesystem.js';
import { makeAccessRig, netplusTemplate, signIn, TerminalClient, until, UpgradeRefused, type AccessRig } from './helpers.js';

const alive = (pid: number) => existsSync(`/proc/${pid}`);

/** A process and all its descendants, from /proc. */
async function processTree(pid: number): Promise<number[]> {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    const tasks = await readdir(`/proc/${out[i]}/task`).catch(() => [] as string[]);
    for (const task of tasks) {
      const children = await readFile(`/proc/${out[i]}/task/${task}/children`, 'utf8').catch(() => '');
      for (const c of children.split(/\s+/)) if (c !== '') out.push(Number(c));
    }
  }
  return out;
}

describe('lab terminals: a learner shell per device over a WebSocket', () => {
  let rig: AccessRig;
  let lab: Scenario;
  let cookie: string;
  before(async () => {
    rig = await makeAccessRig({
      limits: { terminalsPerScenario: 3, maxMessageBytes: 4096, reconnectGraceMs: 20_000, outputBytesPerSecond: 8192, outputBurstBytes: 8192 },
    });
    lab = await rig.createLab(await netplusTemplate());
    cookie = await signIn(rig, lab.scenario_id, await rig.issue(lab.scenario_id));
  });
  after(async () => rig?.close());
  // Closed sockets leave their shells waiting for a reconnect; each test starts with none.
  beforeEach(async () => rig && lab && rig.access.terminals.endScenario(lab.scenario_id, CLOSE.normal, 'next test'));

  it('runs a login shell inside the device as the learner: its own addresses, hostname, root in the lab', async () => {
    const term = await TerminalClient.connect(rig, lab.scenario_id, 'h1', cookie);
    try {
      await term.waitFor('ready', () => term.session);
      term.input('ip -br addr; hostname; id -u\r');
      await term.waitOutput(/10\.10\.1\.10\/24/);
      await term.waitOutput(/\nh1\r?\n/);
      await term.waitOutput(/\n0\r?\n/);
      assert.ok(!term.output.includes('10.10.2.20'), 'h2 address not visible on h1');
      // Resize reaches the PTY: the shell sees the new size.
      term.ws.send(JSON.stringify({ type: 'resize', cols: 132, rows: 43 }));
      term.input('echo size=$(stty size)\r');
      await term.waitOutput(/size=43 132/);
    } finally {
      term.ws.close();
    }
    const other = await TerminalClient.connect(rig, lab.scenario_id, 'h2', cookie);
    try {
      // Typed before the shell is even up: kept and delivered, not lost.
      other.input('ip -br addr\r');
      await other.waitOutput(/10\.10\.2\.20\/24/);
    } finally {
      other.ws.close();
    }
  });

  it('checks token, scenario, device and origin on upgrade', async () => {
    const refusedWith = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (err) {
        if (err instanceof UpgradeRefused) return err.status;
        throw err;
      }
      throw new Error('upgrade was accepted');
    };
    assert.equal(await refusedWith(TerminalClient.connect(rig, lab.scenario_id, 'h1', undefined)), 401);
    assert.equal(await refusedWith(TerminalClient.connect(rig, lab.scenario_id, 'h1', 'fg_access=nonsense')), 401);
    const expired = await rig.session(lab.scenario_id, { ttlS: -5 });
    assert.equal(await refusedWith(TerminalClient.connect(rig, lab.scenario_id, 'h1', `fg_access=${expired}`)), 401);
    // An access link is not a session: the cookie must hold the session the link opened.
    assert.equal(await refusedWith(TerminalClient.connect(rig, lab.scenario_id, 'h1', `fg_access=${await rig.issue(lab.scenario_id)}`)), 401);
    const otherScenario = await rig.session('scn_notthisone');
    assert.equal(await refusedWith(TerminalClient.connect(rig, lab.scenario_id, 'h1', `fg_access=${otherScenario}`)), 403);
    assert.equal(await refusedWith(TerminalClient.connect(rig, lab.scenario_id, 'h9', cookie)), 404);
    assert.equal(await refusedWith(TerminalClient.connect(rig, lab.scenario_id, 'h1', cookie, { origin: 'http://evil.example' })), 403);
  });

  it('survives a network blip: the same shell comes back with what it printed meanwhile', async () => {
    const term = await TerminalClient.connect(rig, lab.scenario_id, 'h1', cookie);
    const session = await term.waitFor('ready', () => term.session);
    term.input('MARK=blip42; echo pid=$$\r');
    const pid = (await term.waitOutput(/pid=(\d+)/))[1];
    term.input('sleep 1; echo "after-$MARK"\r');
    term.ws.terminate(); // the connection drops without a close handshake
    await term.waitClosed();
    const back = await TerminalClient.connect(rig, lab.scenario_id, 'h1', cookie, { session });
    try {
      await back.waitFor('ready', () => back.controls.find((c) => c.type === 'ready'));
      assert.deepEqual(back.controls[0], { type: 'ready', session, resumed: true, device: 'h1' });
      await back.waitOutput(/after-blip42/);
      back.input('echo pid=$$\r');
      assert.equal((await back.waitOutput(/pid=(\d+)/))[1], pid, 'the same shell process');
    } finally {
      back.ws.close();
    }
    // Another learner's socket cannot take this shell over: it gets a new one.
    const stranger = await TerminalClient.connect(
      rig,
      lab.scenario_id,
      'h1',
      await signIn(rig, lab.scenario_id, await rig.issue(lab.scenario_id, { subject: 'learner-2' })),
      { session },
    );
    try {
      const ready = await stranger.waitFor('ready', () => stranger.controls.find((c) => c.type === 'ready'));
      assert.equal(ready.resumed, false);
      assert.notEqual(ready.session, session);
    } finally {
      stranger.ws.close();
    }
  });

  it('closes the socket cleanly on bad frames (binary, not JSON, unknown, too big) and keeps the shell', async () => {
    const cases: Array<[string, (ws: TerminalClient['ws']) => void, number]> = [
      ['binary', (ws) => ws.send(Buffer.from([1, 2, 3]), { binary: true }), CLOSE.unsupportedData],
      ['not json', (ws) => ws.send('ls\r'), CLOSE.invalidPayload],
      ['unknown type', (ws) => ws.send(JSON.stringify({ type: 'exec', argv: ['id'] })), CLOSE.invalidPayload],
      ['resize out of range', (ws) => ws.send(JSON.stringify({ type: 'resize', cols: 100000, rows: 5 })), CLOSE.invalidPayload],
      ['too big', (ws) => ws.send(JSON.stringify({ type: 'input', data: 'x'.repeat(8192) })), CLOSE.tooBig],
    ];
    let session: string | undefined;
    for (const [name, send, code] of cases) {
      const term = await TerminalClient.connect(rig, lab.scenario_id, 'h2', cookie, session ? { session } : {});
      session = await term.waitFor('ready', () => term.session);
      send(term.ws);
      const closed = await term.waitClosed();
      assert.equal(closed.code, code, name);
    }
    const term = await TerminalClient.connect(rig, lab.scenario_id, 'h2', cookie, { session: session! });
    try {
      await term.waitFor('ready', () => term.controls.find((c) => c.type === 'ready' && c.resumed === true));
      term.input('echo still-here\r');
      await term.waitOutput(/still-here/);
    } finally {
      term.ws.close();
    }
  });

  it('limits terminals per scenario and output rate; records every session as asciicast v2', async () => {
    const open = [];
    for (let i = 0; i < 3; i++) {
      const t = await TerminalClient.connect(rig, lab.scenario_id, 'r1', cookie);
      await t.waitFor('ready', () => t.session);
      open.push(t);
    }
    const fourth = await TerminalClient.connect(rig, lab.scenario_id, 'r1', cookie);
    const closed = await fourth.waitClosed();
    assert.equal(closed.code, CLOSE.tooManyTerminals);
    assert.match(closed.reason, /at most 3 terminals/);

    // Output flows at the configured rate: 8 KiB burst + 8 KiB/s; whatever arrives by any moment
    // is bounded by that (a slow machine only delivers less).
    const t = open[0]!;
    const startedAt = Date.now();
    const before = t.output.length;
    t.input("head -c 60000 /dev/zero | tr '\\0' 'a'; echo; echo done-$((1+1))-flood\r");
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const received = t.output.length - before;
      const bound = 8192 + (8192 * (Date.now() - startedAt)) / 1000 + 4096;
      assert.ok(received <= bound, `received ${received} bytes within ${Date.now() - startedAt} ms, bound ${bound}`);
    }
    await t.waitOutput(/done-2-flood/, 30_000);
    assert.ok(t.output.length - before >= 60000, 'nothing was dropped');

    t.input('echo recorded-$((6*7))\r');
    await t.waitOutput(/recorded-42/);
    for (const x of open) x.ws.close();
    await rig.access.terminals.endScenario(lab.scenario_id, CLOSE.normal, 'test done');

    const dir = recordingsDir(rig.storageDir, lab.scenario_id);
    const files = (await readdir(dir)).filter((f) => f.endsWith('.cast'));
    assert.ok(files.length >= 4, `a recording per session: ${files.join(', ')}`);
    const casts = await Promise.all(files.map(async (f) => parseAsciicast(await readFile(path.join(dir, f), 'utf8'))));
    const flood = casts.find((c) => c.events.some((e) => e[1] === 'o' && e[2].includes('recorded-42')));
    assert.ok(flood, 'the session with the flood was recorded');
    assert.equal(flood.header.version, 2);
    assert.equal(flood.header.width, 100);
    assert.equal(flood.header.height, 30);
    assert.ok(Math.abs(flood.header.timestamp - Date.now() / 1000) < 600);
    const typed = flood.events
      .filter((e) => e[1] === 'i')
      .map((e) => e[2])
      .join('');
    assert.ok(typed.includes('echo recorded-$((6*7))\r'), 'input recorded');
    const printed = flood.events
      .filter((e) => e[1] === 'o')
      .map((e) => e[2])
      .join('');
    assert.ok(printed.includes('done-2-flood') && printed.includes('recorded-42'), 'output recorded');
    const times = flood.events.map((e) => e[0]);
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
      'timestamps never go back',
    );
    assert.ok(times.at(-1)! > 0);
    // The first test's session typed `ip -br addr` on h1 and saw its address.
    const h1 = casts.find((c) => c.header.title.endsWith(' h1') && c.events.some((e) => e[1] === 'i' && e[2].includes('ip -br addr')));
    assert.ok(h1?.events.some((e) => e[1] === 'o' && e[2].includes('10.10.1.10')));
  });

  it('a shell that exits closes its terminal with its exit code; the next connection gets a new shell', async () => {
    const term = await TerminalClient.connect(rig, lab.scenario_id, 'r1', cookie);
    const session = await term.waitFor('ready', () => term.session);
    term.input('exit 3\r');
    const closed = await term.waitClosed();
    assert.equal(closed.code, CLOSE.shellExited);
    assert.deepEqual(
      term.controls.find((c) => c.type === 'exit'),
      { type: 'exit', exit_code: 3 },
    );
    assert.equal(rig.access.terminals.get(session), undefined);
    const next = await TerminalClient.connect(rig, lab.scenario_id, 'r1', cookie, { session });
    try {
      const ready = await next.waitFor('ready', () => next.controls.find((c) => c.type === 'ready'));
      assert.equal(ready.resumed, false);
    } finally {
      next.ws.close();
    }
  });

  it('the session outlives its short link and ends with the lab: the terminal closes when the lab is over', async () => {
    // A 3-second link opens a session that lives as long as the lab.
    const linkEnds = Date.now() + 3000;
    const shortCookie = await signIn(rig, lab.scenario_id, await rig.issue(lab.scenario_id, { ttlS: 3 }));
    const term = await TerminalClient.connect(rig, lab.scenario_id, 'h2', shortCookie);
    await term.waitFor('ready', () => term.session);
    await until('the link to have expired', () => (Date.now() > linkEnds + 1000 ? true : undefined), 10_000);
    const status = await fetch(`${rig.baseUrl}/v1/access/${lab.scenario_id}/status`, { headers: { cookie: shortCookie } });
    assert.equal(status.status, 200, 'the session still holds after the link expired');
    term.input('echo still-$((6*7))\r');
    await term.waitOutput(/still-42/);
    assert.equal(term.closed, undefined);
    term.ws.close();

    // The lab is about to end: a terminal opened now closes at the lab's end, not before.
    const store = new ScenarioStore(rig.platform.db);
    await store.updateExpiry(rig.tenantId, lab.scenario_id, () => new Date(Date.now() + 2500));
    const last = await TerminalClient.connect(rig, lab.scenario_id, 'h2', shortCookie);
    await last.waitFor('ready', () => last.session);
    const closed = await last.waitClosed();
    assert.equal(closed.code, CLOSE.labGone);
    assert.match(closed.reason, /lab has ended/);
  });

  it('copies finished recordings to another evidence store (as to an S3 bucket)', async () => {
    const bucketDir = mkdtempSync(path.join(tmpdir(), 'fg-access-bucket-'));
    const bucket = new FilesystemStorage(bucketDir);
    const copyRig = await makeAccessRig({ publishTo: bucket });
    try {
      const copyLab = await copyRig.createLab(await netplusTemplate());
      const c = await signIn(copyRig, copyLab.scenario_id, await copyRig.issue(copyLab.scenario_id));
      const term = await TerminalClient.connect(copyRig, copyLab.scenario_id, 'h1', c);
      await term.waitFor('ready', () => term.session);
      term.input('echo copied-$((3*3))\r');
      await term.waitOutput(/copied-9/);
      await copyRig.access.terminals.endScenario(copyLab.scenario_id, CLOSE.normal, 'done');
      const prefix = `scenarios/${copyLab.scenario_id}/recordings/`;
      const copied = await until('the recording in the other store', async () => {
        const [obj] = await bucket.list(prefix);
        const text = obj ? (await bucket.get(obj.key))?.toString('utf8') : undefined;
        return text?.includes('session ended') ? text : undefined;
      });
      const cast = parseAsciicast(copied);
      assert.ok(cast.events.some((e) => e[1] === 'o' && e[2].includes('copied-9')));
      const local = await readdir(recordingsDir(copyRig.storageDir, copyLab.scenario_id));
      assert.deepEqual(
        (await bucket.list(prefix)).map((o) => o.key.slice(prefix.length)),
        local,
        'same names as the local recordings',
      );
    } finally {
      await copyRig.close();
      rmSync(bucketDir, { recursive: true, force: true });
    }
  });

  it('warns before the idle timeout, then closes the terminal and stops its shell', async () => {
    const idleRig = await makeAccessRig({ limits: { idleTimeoutMs: 2500, idleWarningMs: 1500 } });
    try {
      const idleLab = await idleRig.createLab(await netplusTemplate());
      const c = await signIn(idleRig, idleLab.scenario_id, await idleRig.issue(idleLab.scenario_id));
      const term = await TerminalClient.connect(idleRig, idleLab.scenario_id, 'h1', c);
      const session = await term.waitFor('ready', () => term.session);
      term.input('echo pid=$$\r');
      await term.waitOutput(/pid=\d+/);
      const tree = await processTree(idleRig.access.terminals.get(session)!.pid);
      assert.ok(tree.length >= 2, `the shell runs under the PTY's process: ${tree.join(' ')}`);
      const warning = await term.waitFor('idle warning', () => term.controls.find((m) => m.type === 'idle_warning'));
      assert.equal(warning.seconds_left, 2);
      const closed = await term.waitClosed();
      assert.equal(closed.code, CLOSE.idle);
      await until('the idle shell and everything under it to be gone', () => (tree.some(alive) ? undefined : true));
    } finally {
      await idleRig.close();
    }
  });
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { connect } from 'nats';
import { WorkerFleet } from '../../../src/forge/orchestrator/fleet.js';
import { RemoteShell } from '../../../src/forge/orchestrator/remote-shell.js';
import { NetnsLabRuntime } from '../../../src/forge/runtime/netns/driver.js';
import { WorkerAgent } from '../../../src/forge/worker/agent.js';
import { FleetAuth, FleetAuthError } from '../../../src/forge/worker/channel.js';
import { encode, replyContext, rpcSubject, ttySubject } from '../../../src/forge/worker/protocol.js';
import { startThrowawayNats } from '../../helpers/servers.js';

describe('the fleet channel seal', () => {
  const secret = randomBytes(32);

  it('opens what the same secret sealed for the same context, once', () => {
    const a = new FleetAuth(secret);
    const b = new FleetAuth(secret);
    const sealed = a.seal('fg.worker.w1.rpc', { op: 'list' });
    assert.deepEqual(b.open('fg.worker.w1.rpc', sealed), { op: 'list' });
    assert.throws(() => b.open('fg.worker.w1.rpc', sealed), FleetAuthError, 'a replay is refused');
    assert.deepEqual(b.open('fg.worker.w1.rpc', sealed, true), { op: 'list' }, 'adverts may be read again');
  });

  it('refuses another secret, another context, an altered body and a stale message', () => {
    const a = new FleetAuth(secret);
    const sealed = a.seal('fg.worker.w1.rpc', { op: 'exec', argv: ['true'] });
    assert.throws(() => new FleetAuth(randomBytes(32)).open('fg.worker.w1.rpc', sealed), /not sealed with the fleet secret/);
    assert.throws(() => new FleetAuth(secret).open('fg.worker.w2.rpc', sealed), /not sealed with the fleet secret/, 'sealed for worker w1, replayed to w2');
    const m = JSON.parse(Buffer.from(sealed).toString()) as { body: string };
    m.body = m.body.replace('true', 'reboot');
    assert.throws(() => new FleetAuth(secret).open('fg.worker.w1.rpc', Buffer.from(JSON.stringify(m))), /not sealed/);
    const late = new FleetAuth(secret, { now: () => Date.now() + 31_000 });
    assert.throws(() => late.open('fg.worker.w1.rpc', sealed), /s old/);
    assert.throws(() => new FleetAuth(secret).open('x', encode({ op: 'list' })), /not sealed/);
    assert.throws(() => new FleetAuth(randomBytes(16)), /at least 32 bytes/);
  });
});

describe('a worker agent on NATS answers only sealed requests', () => {
  it('ignores unsealed and foreign-sealed requests; a fleet with another secret sees no worker', { timeout: 60_000 }, async () => {
    const nats = await startThrowawayNats();
    const dir = await mkdtemp(path.join(tmpdir(), 'fg-chan-'));
    const nc = await connect({ servers: nats.url });
    const secret = randomBytes(32);
    const workerId = `ch-${randomBytes(3).toString('hex')}`;
    const refused: string[] = [];
    const agent = new WorkerAgent({
      nc,
      runtime: new NetnsLabRuntime({ stateDir: path.join(dir, 'labs') }),
      workerId,
      capacity: 1,
      heartbeatMs: 500,
      auth: new FleetAuth(secret),
      onError: (_err, context) => refused.push(context),
    });
    const strangers = new WorkerFleet({ auth: new FleetAuth(randomBytes(32)), pollMs: 60_000 });
    const friends = new WorkerFleet({ auth: new FleetAuth(secret), pollMs: 60_000 });
    try {
      await agent.start();
      const subject = rpcSubject(workerId);
      // Anyone on the bus: a plain request and one sealed with another secret get no answer at all.
      await assert.rejects(nc.request(subject, encode({ op: 'list' }), { timeout: 1500 }), /TIMEOUT/);
      await assert.rejects(nc.request(subject, new FleetAuth(randomBytes(32)).seal(subject, { op: 'list' }), { timeout: 1500 }), /TIMEOUT/);
      assert.deepEqual(refused, ['refused request', 'refused request']);
      // The same secret: answered, and the answer is sealed to that very request.
      const auth = new FleetAuth(secret);
      const sealed = auth.seal(subject, { op: 'list' });
      const reply = await nc.request(subject, sealed, { timeout: 5000 });
      assert.deepEqual(auth.open(replyContext(auth.nonceOf(sealed)), reply.data), { ok: true, result: [] });
      assert.throws(() => auth.open(replyContext('another-request'), reply.data), /not sealed/);
      // The same request sent again is a replay: no answer.
      await assert.rejects(nc.request(subject, sealed, { timeout: 1500 }), /TIMEOUT/);
      // Adverts are sealed too: a fleet without the secret does not see the worker, one with it does.
      const errors: unknown[] = [];
      await strangers.start(nc, { workerLost: async () => undefined, workerReturned: async () => undefined, error: (e) => errors.push(e) });
      await friends.start(nc, { workerLost: async () => undefined, workerReturned: async () => undefined, error: (e) => errors.push(e) });
      assert.deepEqual(strangers.liveWorkers(), []);
      assert.ok(errors.some((e) => e instanceof FleetAuthError));
      assert.deepEqual(
        friends.liveWorkers().map((w) => w.workerId),
        [workerId],
      );
    } finally {
      await strangers.stop();
      await friends.stop();
      await agent.stop();
      await nc.drain().catch(() => undefined);
      await nats.stop();
      await nats.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the lab page end of a relayed shell', () => {
  it('keeps output that arrives before its listeners, drops forged frames, seals what it sends', { timeout: 60_000 }, async () => {
    const nats = await startThrowawayNats();
    const nc = await connect({ servers: nats.url });
    const secret = randomBytes(32);
    const worker = new FleetAuth(secret);
    const stream = randomBytes(16).toString('hex');
    const out = ttySubject(stream, 'out');
    const inbound = ttySubject(stream, 'in');
    const received: unknown[] = [];
    const sub = nc.subscribe(inbound, { callback: (_e, m) => received.push(worker.open(inbound, m.data)) });
    const shell = new RemoteShell(nc, new FleetAuth(secret), stream);
    try {
      // The worker's first prompt, and a frame from someone without the secret, before anyone listens.
      nc.publish(out, worker.seal(out, { t: 'data', d: 'root@h1:~# ' }));
      nc.publish(out, encode({ t: 'data', d: 'forged' }));
      nc.publish(out, new FleetAuth(randomBytes(32)).seal(out, { t: 'data', d: 'forged too' }));
      await nc.flush();
      shell.started(4242);
      await new Promise((r) => setTimeout(r, 200)); // the lab page opens its recording meanwhile
      const data: string[] = [];
      const exited = new Promise<{ exitCode: number }>((resolve) => shell.onExit(resolve));
      shell.onData((d) => data.push(d));
      shell.write('ip -br addr\r');
      shell.resize(100, 30);
      nc.publish(out, worker.seal(out, { t: 'data', d: 'eth0 UP' }));
      nc.publish(out, worker.seal(out, { t: 'exit', code: 0 }));
      assert.deepEqual(await exited, { exitCode: 0 });
      assert.deepEqual(data, ['root@h1:~# ', 'eth0 UP']);
      assert.equal(shell.pid, 4242);
      await nc.flush();
      assert.deepEqual(received, [
        { t: 'input', d: 'ip -br addr\r' },
        { t: 'resize', cols: 100, rows: 30 },
      ]);
    } finally {
      sub.unsubscribe();
      await nc.drain().catch(() => undefined);
      await nats.stop();
      await nats.dispose();
    }
  });
});

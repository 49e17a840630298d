import assert from 'node:assert/strict';
import { it } from 'node:test';
import { GroupPipeline } from '../../../src/core/decisions/group-pipeline.js';

/** A promise settled from outside, to hold a stage open while the test looks at the others. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

it('prepares group K+1 while K writes, holds K+2 until K is written, and writes in order', async () => {
  const pipeline = new GroupPipeline();
  const log: string[] = [];
  const writeGates = [gate(), gate(), gate()];
  const groups = [0, 1, 2].map((k) =>
    pipeline.run(
      async () => {
        log.push(`prepare ${k}`);
        return k;
      },
      async (p) => {
        log.push(`write ${p} start`);
        await writeGates[p]!.opened;
        log.push(`write ${p} end`);
        return p;
      },
    ),
  );
  await turn();
  assert.deepEqual(log, ['prepare 0', 'write 0 start', 'prepare 1'], 'group 1 prepares during write 0; group 2 waits for write 0');
  writeGates[0]!.open();
  await turn();
  assert.deepEqual(log.slice(3), ['write 0 end', 'write 1 start', 'prepare 2']);
  writeGates[1]!.open();
  writeGates[2]!.open();
  assert.deepEqual(await Promise.all(groups.map((g) => g.done)), [0, 1, 2]);
  assert.deepEqual(log.slice(6), ['write 1 end', 'write 2 start', 'write 2 end']);
});

it('a failed stage fails its own group only; `prepared` never rejects', async () => {
  const pipeline = new GroupPipeline();
  const first = pipeline.run(
    async () => {
      throw new Error('read failed');
    },
    async () => 'unreachable',
  );
  const second = pipeline.run(
    async () => 'ok',
    async (p) => {
      throw new Error(`write of ${p} failed`);
    },
  );
  const third = pipeline.run(
    async () => 3,
    async (p) => p,
  );
  await first.prepared;
  await assert.rejects(first.done, /read failed/);
  await assert.rejects(second.done, /write of ok failed/);
  assert.equal(await third.done, 3);
});

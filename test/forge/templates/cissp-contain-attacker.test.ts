import { test } from 'node:test';
import { proveTemplate } from './reference-solution.js';

test('cissp-contain-attacker: untouched grades 0%, the reference solution grades 100%', async (t) => {
  await proveTemplate(t, 'cissp-contain-attacker');
});

import { test } from 'node:test';
import { proveTemplate } from './reference-solution.js';

test('cissp-incident-response: untouched grades 0%, the reference solution grades 100%', async (t) => {
  await proveTemplate(t, 'cissp-incident-response');
});

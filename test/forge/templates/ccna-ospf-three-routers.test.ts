import { test } from 'node:test';
import { proveTemplate } from './reference-solution.js';

test('ccna-ospf-three-routers: untouched grades 0%, the reference solution grades 100%', async (t) => {
  await proveTemplate(t, 'ccna-ospf-three-routers');
});

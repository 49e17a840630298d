import { test } from 'node:test';
import { proveTemplate } from './reference-solution.js';

test('netplus-dns-dhcp: untouched grades 0%, the reference solution grades 100%', async (t) => {
  await proveTemplate(t, 'netplus-dns-dhcp');
});

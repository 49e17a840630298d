import { test } from 'node:test';
import { proveTemplate } from './reference-solution.js';

// test/forge/scoring/grading-lab.test.ts grades this template through the scoring service;
// this proves the reference solution file the same way as every other template's.
test('netplus-two-subnets: untouched grades 0%, the reference solution grades 100%', async (t) => {
  await proveTemplate(t, 'netplus-two-subnets');
});

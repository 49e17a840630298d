import assert from 'node:assert/strict';
import { it, type TestContext } from 'node:test';

/**
 * Tests that need a tool a developer's machine may lack (dockerd, s3rver, the CrowdSec bouncers):
 * skipped locally, saying what is missing and how to get it, but failing in CI (CI=true), where
 * .ci/run installs every tool and a silent skip would hide a broken install step.
 */
export interface OptionalTool {
  /** For the options of test() or describe(): the reason when the tool is missing locally, else false. */
  readonly skip: string | false;
  /** Wraps a test body: in CI with the tool missing, the test fails with the reason instead of running. */
  test(fn: (t: TestContext) => unknown): (t: TestContext) => Promise<void>;
  /** Wraps a describe body: in CI with the tool missing, the suite is one test that fails with the reason. */
  suite(fn: () => void): () => void;
}

export const inCi = (): boolean => process.env.CI === 'true';

/** `missing`: why the tool cannot be used here (what is missing and how to install it), or false/undefined when it can. */
export function optionalTool(missing: string | false | undefined): OptionalTool {
  const reason = missing || undefined;
  const failInCi = reason !== undefined && inCi();
  const failure = () => assert.fail(`required in CI (CI=true), where nothing may be skipped: ${reason}`);
  return {
    skip: reason !== undefined && !failInCi ? reason : false,
    test: (fn) => async (t) => {
      if (failInCi) failure();
      await fn(t);
    },
    suite: (fn) => () => {
      if (failInCi) it(`needs a missing tool: ${reason}`, failure);
      else fn();
    },
  };
}

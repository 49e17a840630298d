import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { ROOT } from '../helpers/cli.js';
import { PROM_DIR, RULE_TESTS_FILE, RULES_FILE, loadRules, selectors } from './rules.js';

/** promtool (Debian's prometheus package) checks the config and the rules and runs their unit tests. */
function promtool(...args: string[]): string {
  return execFileSync('promtool', args, { cwd: PROM_DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('Prometheus config and rules (deploy/prometheus)', () => {
  it('promtool check config and check rules pass', () => {
    assert.match(promtool('check', 'config', 'prometheus.yml'), /SUCCESS/);
    assert.match(promtool('check', 'rules', RULES_FILE), /SUCCESS/);
  });

  it('promtool test rules passes, and every alert has a test in which it fires', () => {
    assert.match(promtool('test', 'rules', RULE_TESTS_FILE), /SUCCESS/);
    const tests = parse(readFileSync(RULE_TESTS_FILE, 'utf8')) as {
      tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
    };
    const fired = new Set(tests.tests.flatMap((t) => (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    const quiet = new Set(tests.tests.flatMap((t) => (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length === 0).map((a) => a.alertname)));
    const alerts = loadRules().flatMap((r) => (r.alert ? [r.alert] : []));
    assert.ok(alerts.length >= 8, `only ${alerts.length} alerts`);
    assert.deepEqual(
      alerts.filter((a) => !fired.has(a)),
      [],
      'alerts without a test that makes them fire',
    );
    // Quiet cases guard against an alert that fires on everything.
    assert.deepEqual(
      alerts.filter((a) => !quiet.has(a) && !['FrostGateReadinessFlapping', 'FrostGateLabLeak'].includes(a)),
      [],
      'alerts without a case where they stay quiet',
    );
  });

  it('promtool test rules fails when an alert does not fire as its test expects (the check can fail)', () => {
    const broken = readFileSync(RULE_TESTS_FILE, 'utf8').replace(
      "summary: '150 ingest batches wait to be decided'",
      "summary: '151 ingest batches wait to be decided'",
    );
    assert.notEqual(broken, readFileSync(RULE_TESTS_FILE, 'utf8'));
    const file = path.join(PROM_DIR, 'tests', `.broken-${process.pid}.test.yml`);
    try {
      execFileSync('sh', ['-c', `cat > ${file}`], { input: broken });
      assert.throws(() => promtool('test', 'rules', file), /FAILED/);
    } finally {
      execFileSync('rm', ['-f', file]);
    }
  });

  it('every alert links its runbook, which exists and names the alert', () => {
    for (const rule of loadRules().filter((r) => r.alert)) {
      const url = rule.annotations?.runbook_url;
      assert.ok(url, `${rule.alert} has no runbook_url`);
      assert.match(url, /^docs\/runbooks\/[a-z0-9-]+\.md$/, `${rule.alert}: ${url}`);
      const page = path.join(ROOT, url);
      assert.ok(existsSync(page), `${rule.alert}: ${url} does not exist`);
      assert.ok(readFileSync(page, 'utf8').includes(`\`${rule.alert}\``), `${url} does not name ${rule.alert}`);
    }
  });

  it('the selector reader finds the metrics of an expression', () => {
    assert.deepEqual(selectors('sum by (component) (increase(fail_open_triggered_total[5m])) > 0'), ['fail_open_triggered_total']);
    assert.deepEqual(selectors('health_ready == 0 or up{job=~"frostgate-.*"} == 0'), ['health_ready', 'up{job=~"frostgate-.*"}']);
    assert.deepEqual(selectors('sum(rate(spawns_total{result="failed"}[10m])) / clamp_min(sum(rate(spawns_total{result=~"created|failed"}[10m])), 1e-9)'), [
      'spawns_total{result="failed"}',
      'spawns_total{result=~"created|failed"}',
    ]);
  });
});

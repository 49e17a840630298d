import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ScenarioStore, type Scenario } from '../../../src/forge/orchestrator/store.js';
import { makeAccessRig, netplusTemplate, signIn, type AccessRig } from './helpers.js';

describe('the access page: token to cookie, clean URL, lab content, refusals', () => {
  let rig: AccessRig;
  let lab: Scenario;
  before(async () => {
    rig = await makeAccessRig({ extendMinutes: 10 });
    lab = await rig.createLab(await netplusTemplate());
  });
  after(async () => rig?.close());

  const page = (path: string, cookie?: string) => fetch(`${rig.baseUrl}${path}`, { redirect: 'manual', headers: cookie ? { cookie } : {} });

  it('moves the token from the URL into an HttpOnly SameSite=Strict cookie and redirects to the clean URL; the link works once', async () => {
    const token = await rig.issue(lab.scenario_id);
    const first = await page(`/v1/access/${lab.scenario_id}?token=${token}`);
    assert.equal(first.status, 303);
    assert.equal(first.headers.get('location'), `/v1/access/${lab.scenario_id}`);
    const setCookie = first.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /^fg_access=[^;]+;/);
    assert.match(setCookie, /; HttpOnly/);
    assert.match(setCookie, /; SameSite=Strict/);
    assert.match(setCookie, new RegExp(`; Path=/v1/access/${lab.scenario_id}(;|$)`));
    // The cookie holds the lab session the link opened: as long as the lab, plus a day for the results.
    const labLeftS = (Date.parse((await rig.orchestrator.get(rig.tenantId, lab.scenario_id)).expires_at) - Date.now()) / 1000;
    const maxAge = Number(/Max-Age=(\d+)/.exec(setCookie)?.[1]);
    assert.ok(Math.abs(maxAge - (labLeftS + 24 * 3600)) < 10, `session cookie lives as long as the lab (${labLeftS} s) + 24 h: ${maxAge}`);
    assert.ok(!setCookie.includes('Secure'), 'plain http on loopback: no Secure flag');

    // The same link again, from a browser without the cookie: refused as already used.
    const again = await page(`/v1/access/${lab.scenario_id}?token=${token}`);
    assert.equal(again.status, 401);
    const html = await again.text();
    assert.match(html, /already used/);
    assert.match(html, /data-reason="replayed"/);
    // ...and from the browser that holds the cookie: it just lands on the clean URL.
    const cookie = setCookie.split(';')[0]!;
    const withCookie = await page(`/v1/access/${lab.scenario_id}?token=${token}`, cookie);
    assert.equal(withCookie.status, 303);
    assert.equal(withCookie.headers.get('set-cookie'), null);
  });

  it('shows title, tasks, time left, extend, the drawn topology and a tab per device, under a strict CSP', async () => {
    const cookie = await signIn(rig, lab.scenario_id, await rig.issue(lab.scenario_id));
    const res = await page(`/v1/access/${lab.scenario_id}`, cookie);
    assert.equal(res.status, 200);
    assert.match(String(res.headers.get('content-type')), /^text\/html/);
    const html = await res.text();
    const template = await netplusTemplate();
    assert.ok(html.includes(template.title.replace(/:/g, ':')), 'title');
    for (const task of template.tasks) assert.ok(html.includes(task.replace(/'/g, '&#39;')), `task ${task}`);
    assert.match(html, new RegExp(`data-expires-at="${lab.expires_at}"`));
    assert.match(html, /id="extend">Extend 10 min/);
    for (const d of ['r1', 'h1', 'h2']) {
      assert.match(html, new RegExp(`<g class="device" data-device="${d}">`), `topology draws ${d}`);
      assert.match(html, new RegExp(`role="tab"[^>]*data-device="${d}"`), `tab for ${d}`);
    }
    for (const n of ['lan-a', 'lan-b']) assert.match(html, new RegExp(`data-network="${n}"`));
    // The template sets no limits: the runtime's defaults, as the lab runs with them.
    assert.match(
      html,
      /<h2>Limits<\/h2><p id="limits">CPU weight 512 \(1024 = one core&#39;s share\), memory 512 MiB, 512 processes, disk 64 MiB per device<\/p>/,
    );
    assert.ok(html.includes('10.10.1.10/24') && html.includes('10.10.2.1/24'), 'interface addresses drawn');
    const csp = String(res.headers.get('content-security-policy'));
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /style-src 'self' 'nonce-[A-Za-z0-9+/=]{20,}'/);
    assert.ok(!csp.includes('unsafe-inline') && !csp.includes('unsafe-eval') && !/https?:/.test(csp), csp);
    assert.ok(!/<script(?![^>]*(type="application\/json"|src=))/.test(html), 'no inline executable script');

    // Assets come from this server (xterm from node_modules), only with the cookie.
    for (const name of ['lab.js', 'lab.css', 'xterm.mjs', 'xterm.css', 'addon-fit.mjs']) {
      const a = await page(`/v1/access/${lab.scenario_id}/assets/${name}`, cookie);
      assert.equal(a.status, 200, name);
      assert.ok((await a.text()).length > 100, name);
    }
    assert.equal((await page(`/v1/access/${lab.scenario_id}/assets/lab.js`)).status, 401);
    assert.equal((await page(`/v1/access/${lab.scenario_id}/assets/..%2F..%2Fpackage.json`, cookie)).status, 404);
  });

  it('status reports time left; extend pushes the expiry out', async () => {
    const cookie = await signIn(rig, lab.scenario_id, await rig.issue(lab.scenario_id));
    const before = (await (await page(`/v1/access/${lab.scenario_id}/status`, cookie)).json()) as {
      state: string;
      seconds_left: number;
      expires_at: string;
      grading: { status: string };
    };
    assert.equal(before.state, 'running');
    assert.ok(before.seconds_left > 50 * 60 && before.seconds_left <= 60 * 60);
    assert.equal(before.grading.status, 'unavailable');
    const ext = await fetch(`${rig.baseUrl}/v1/access/${lab.scenario_id}/extend`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', origin: rig.origin },
      body: '{}',
    });
    assert.equal(ext.status, 200, await ext.clone().text());
    const { expires_at } = (await ext.json()) as { expires_at: string };
    assert.ok(Date.parse(expires_at) >= Date.parse(before.expires_at) + 10 * 60_000 - 1000);
    // The session follows the lab: once the lab outlives what the session covers, it is renewed quietly.
    const short = `fg_access=${await rig.session(lab.scenario_id, { ttlS: 120 })}`;
    const renewed = await page(`/v1/access/${lab.scenario_id}/status`, short);
    assert.equal(renewed.status, 200);
    const renewedCookie = renewed.headers.get('set-cookie') ?? '';
    assert.match(renewedCookie, /^fg_access=[^;]+;.*HttpOnly/);
    const renewedAge = Number(/Max-Age=(\d+)/.exec(renewedCookie)?.[1]);
    assert.ok(renewedAge > (Date.parse(expires_at) - Date.now()) / 1000 + 23 * 3600, `renewed to the extended lab's end + 24 h: ${renewedAge}`);
    const statusAfter = (await (await page(`/v1/access/${lab.scenario_id}/status`, renewedCookie.split(';')[0])).json()) as { access_expires_at: string };
    assert.ok(Date.parse(statusAfter.access_expires_at) > Date.parse(expires_at), 'access now ends after the extended lab');
    // A session already covering the lab is left as it is (no new cookie on every poll).
    assert.equal((await page(`/v1/access/${lab.scenario_id}/status`, renewedCookie.split(';')[0])).headers.get('set-cookie'), null);
    const foreign = await fetch(`${rig.baseUrl}/v1/access/${lab.scenario_id}/extend`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', origin: 'http://evil.example' },
      body: '{}',
    });
    assert.equal(foreign.status, 403);
    // Without grading in this server, submit says so rather than pretending.
    const submit = await fetch(`${rig.baseUrl}/v1/access/${lab.scenario_id}/submit`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', origin: rig.origin },
      body: '{}',
    });
    assert.equal(submit.status, 503);
    assert.equal(((await submit.json()) as { code: string }).code, 'unavailable');
  });

  it('refuses clearly: no token, expired, wrong scenario, forged, lab ended', async () => {
    const refusal = async (path: string, cookie: string | undefined, status: number, reason: string) => {
      const res = await page(path, cookie);
      assert.equal(res.status, status, `${path}: ${reason}`);
      assert.match(String(res.headers.get('content-type')), /^text\/html/);
      const html = await res.text();
      assert.match(html, new RegExp(`data-reason="${reason}"`));
      assert.ok(!html.includes('<script'), 'a refusal page runs no script');
      assert.match(String(res.headers.get('content-security-policy')), /default-src 'none'; style-src 'sha256-/);
      return res;
    };
    await refusal(`/v1/access/${lab.scenario_id}`, undefined, 401, 'missing_token');
    await refusal(`/v1/access/${lab.scenario_id}?token=${await rig.issue(lab.scenario_id, { ttlS: -60 })}`, undefined, 401, 'expired');
    await refusal(`/v1/access/${lab.scenario_id}?token=${await rig.issue('scn_someoneelse')}`, undefined, 403, 'wrong_scenario');
    const good = await rig.issue(lab.scenario_id);
    const forged = `${good.slice(0, -6)}AAAAAA`;
    await refusal(`/v1/access/${lab.scenario_id}?token=${forged}`, undefined, 401, 'bad_signature');
    await refusal(`/v1/access/${lab.scenario_id}`, `fg_access=${forged}`, 401, 'bad_signature');
    // The API routes refuse with problem+json.
    const status = await page(`/v1/access/${lab.scenario_id}/status`);
    assert.equal(status.status, 401);
    assert.match(String(status.headers.get('content-type')), /^application\/problem\+json/);

    const cookie = await signIn(rig, lab.scenario_id, await rig.issue(lab.scenario_id));
    const other = await rig.createLab(await netplusTemplate());
    await rig.orchestrator.destroy(rig.tenantId, other.scenario_id);
    // The link still moves into the cookie; the clean URL then says the lab has ended.
    await refusal(`/v1/access/${other.scenario_id}`, await signIn(rig, other.scenario_id, await rig.issue(other.scenario_id)), 410, 'lab_ended');
    // A lab still being built: a page that says so and reloads itself (from the clean URL, with the cookie).
    const pending = `scn_pending${Date.now()}`;
    await new ScenarioStore(rig.platform.db).insert(rig.tenantId, {
      scenario_id: pending,
      template_id: 'netplus-two-subnets',
      template_version: '1',
      track: 'netplus',
      subject: 'learner-1',
      expires_at: new Date(Date.now() + 3_600_000),
    });
    const notReady = await refusal(`/v1/access/${pending}`, await signIn(rig, pending, await rig.issue(pending)), 503, 'lab_not_ready');
    assert.equal(notReady.headers.get('refresh'), '5');
    // A cookie of one lab opens no other lab, even when sent to its path.
    await refusal(`/v1/access/${other.scenario_id}`, cookie, 403, 'wrong_scenario');
  });
});

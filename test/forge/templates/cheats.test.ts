import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gradeCheat } from './reference-solution.js';

/**
 * One known way to game each shipped template's grader, applied as the learner would, and
 * graded: the criteria the cheat targets must not pass, and the lab scores below 100%.
 * docs/templates.md ("Vantage points", "Rules that take effect") says why each one fails.
 */
async function assertBeaten(t: Parameters<typeof gradeCheat>[0], templateId: string, steps: Parameters<typeof gradeCheat>[2], targeted: string[]) {
  const { grade, statuses } = await gradeCheat(t, templateId, steps);
  for (const id of targeted) {
    const r = grade.results.find((x) => x.id === id);
    assert.ok(r, `${templateId} has criterion ${id}`);
    assert.notEqual(r.status, 'passed', `${templateId}: the cheat passed ${id}:\n  ${statuses}`);
    assert.notEqual(r.status, 'error', `${templateId}: ${id} could not run:\n  ${statuses}`);
  }
  assert.ok(grade.score.percent < 100, `${templateId} cheat scored ${grade.score.percent}%`);
}

test('ccna-acl-router: an output drop on pc1 plus the rule in an unhooked chain on r1 scores nothing', async (t) => {
  await assertBeaten(
    t,
    'ccna-acl-router',
    [
      {
        device: 'pc1',
        run: "nft add table inet cheat\nnft add chain inet cheat out '{ type filter hook output priority 0; policy accept; }'\nnft add rule inet cheat out tcp dport 23 drop",
      },
      { device: 'r1', run: 'nft add table inet acl\nnft add chain inet acl acl_fwd\nnft add rule inet acl acl_fwd ip daddr 10.60.2.10 tcp dport 23 drop' },
    ],
    ['telnet-denied', 'acl-on-router'],
  );
});

test('cissp-contain-attacker: blocking on the attacker itself and an unhooked chain on r1 does not contain it', async (t) => {
  await assertBeaten(
    t,
    'cissp-contain-attacker',
    [
      {
        device: 'attacker',
        run: "nft add table inet cheat\nnft add chain inet cheat out '{ type filter hook output priority 0; policy accept; }'\nnft add rule inet cheat out tcp dport 2222 drop",
      },
      // A bridge-family forward chain sees bridged frames, not what r1 routes: no effect either.
      {
        device: 'r1',
        run: "nft add table bridge cheat\nnft add chain bridge cheat bfwd '{ type filter hook forward priority 0; policy accept; }'\nnft add rule bridge cheat bfwd ip saddr 10.40.1.66 drop",
      },
    ],
    ['attacker-blocked', 'block-on-firewall'],
  );
});

test('netplus-two-subnets: the other host address on the loopback instead of a route is not reachability', async (t) => {
  await assertBeaten(
    t,
    'netplus-two-subnets',
    [
      { device: 'h1', run: 'ip addr add 10.10.2.20/32 dev lo' },
      { device: 'h2', run: 'ip addr add 10.10.1.10/32 dev lo' },
    ],
    ['h1-gateway', 'h2-gateway', 'h1-reaches-h2', 'h2-reaches-h1'],
  );
});

test('netplus-dns-dhcp: a fake DNS server on pc1 answering as 10.20.1.2 does not fix the office DNS', async (t) => {
  await assertBeaten(
    t,
    'netplus-dns-dhcp',
    [
      {
        device: 'pc1',
        run: "ip addr add 10.20.1.2/32 dev lo\nprintf 'port=53\\nlisten-address=10.20.1.2\\nbind-interfaces\\nno-resolv\\nno-hosts\\naddress=/intranet.lab.test/10.20.1.80\\nuser=root\\ngroup=\\npid-file=/run/fake.pid\\n' > /tmp/fake.conf\ndnsmasq -C /tmp/fake.conf\necho 'nameserver 10.20.1.2' > /etc/resolv.conf",
      },
    ],
    ['dns-record'],
  );
});

test('ccna-ospf-three-routers: the upstream address on h3 itself is not a route to it', async (t) => {
  await assertBeaten(t, 'ccna-ospf-three-routers', [{ device: 'h3', run: 'ip addr add 10.50.255.254/32 dev lo' }], ['h3-reaches-provider']);
});

test('cissp-incident-response: renaming the backdoor process while it keeps listening is not eradication', async (t) => {
  await assertBeaten(
    t,
    'cissp-incident-response',
    [
      {
        device: 'ws1',
        run: [
          // The backdoor under a harmless name, still listening on 4444; the original killed.
          'pkill -x kworker-upd || true',
          "setsid bash -c 'exec -a syslogd socat TCP-LISTEN:4444,fork,reuseaddr SYSTEM:true' </dev/null >/dev/null 2>&1 &",
          'i=0; until ss -ltn | grep -q ":4444 "; do i=$((i + 1)); [ "$i" -lt 50 ] || exit 1; sleep 0.1; done',
        ].join('\n'),
      },
    ],
    ['listener-stopped'],
  );
});

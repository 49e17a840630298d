import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isPaymentCard, luhnValid } from '../../../src/forge/sanitizer/checks.js';
import { sanitizeText } from '../../../src/forge/sanitizer/text.js';
import type { PiiKind } from '../../../src/forge/sanitizer/types.js';

/** The kinds found in `text`, in order, with the exact source text of each. */
function found(text: string): Array<[PiiKind, string]> {
  return sanitizeText(text).report.redactions.map((r) => [r.kind, text.slice(r.offset, r.offset + r.length)]);
}

function assertFinds(kind: PiiKind, cases: ReadonlyArray<readonly [string, string]>): void {
  for (const [text, secret] of cases) assert.deepEqual(found(text), [[kind, secret]], text);
}

function assertClean(lines: readonly string[]): void {
  for (const line of lines) assert.equal(sanitizeText(line).text, line, line);
}

describe('sanitizeText', () => {
  it('replaces findings by marks and reports offsets into the input', () => {
    const text = 'From: bob@example.com, SSN 123-45-6789 — ok';
    const result = sanitizeText(text);
    assert.equal(result.text, 'From: [REDACTED:email], SSN [REDACTED:ssn] — ok');
    assert.deepEqual(result.report.redactions, [
      { kind: 'email', offset: 6, length: 15 },
      { kind: 'ssn', offset: 27, length: 11 },
    ]);
    assert.deepEqual(result.report.counts, { private_key: 0, jwt: 0, api_key: 0, email: 1, payment_card: 0, ssn: 1, phone: 0 });
    assert.equal(sanitizeText('').text, '');
  });

  it('finds e-mail addresses but not prompts, scp targets or systemd units', () => {
    assertFinds('email', [
      ['mail alice.smith+lab@example.com now', 'alice.smith+lab@example.com'],
      ['<ops@sub.example.co.uk>', 'ops@sub.example.co.uk'],
      ['mailto:dmarc@example.com;', 'dmarc@example.com'],
      ['Contact: carol@example.org: please call', 'carol@example.org'],
    ]);
    assertClean([
      'root@r1.lab.example:~# ls',
      'scp backup.tar admin@10.0.0.5:/tmp/',
      'scp x ops@files.lab.example:/srv/x',
      'git@github.example.com:org/repo.git',
      'Started getty@tty1.service and wg-quick@wg0.service',
      'root@r1:~# ',
      'npm i left-pad@1.3.0',
    ]);
  });

  it('finds Luhn-valid card numbers with or without separators', () => {
    assertFinds('payment_card', [
      ['visa 4111 1111 1111 1111.', '4111 1111 1111 1111'],
      ['mc 5555-5555-5555-4444', '5555-5555-5555-4444'],
      ['amex 378282246310005', '378282246310005'],
      ['amex 3782 822463 10005', '3782 822463 10005'],
      ['disc=6011111111111117,', '6011111111111117'],
      ['jcb 3530111333300000 end', '3530111333300000'],
      ['4111 1111 1111 1111 exp 12/28', '4111 1111 1111 1111'],
      ['5555 5555 5555 4444', '5555 5555 5555 4444'],
    ]);
    assertClean([
      '\t0x0000:  4500 0047 1234 4000 4006 0000 0a00 0c02  E..G.4@.@.......',
      '00000010: 4111 1111 1111 1111 0a00 0c01 a296 00b3  ................',
      '0000020 4111 1111 1111 1111 2222 3333 4444 5555',
      'bad luhn 4111 1111 1111 1112',
      'mixed separators 4111-1111 1111-1111',
      'odd grouping 41 1111 1111 1111 11',
      'epoch ms 1705312345123 and ns 1705312345123456789',
      'counter 411111111111111 bytes',
      'eui64 00-11-22-33-44-55-66-77',
      'ip 4.111.111.111 and 41.111.111.1111',
    ]);
    assert.ok(luhnValid('79927398713'));
    assert.ok(!luhnValid('79927398710'));
    assert.ok(!isPaymentCard('0000 0000 0000 0000'));
  });

  it('finds SSNs, dashed or after a label', () => {
    assertFinds('ssn', [
      ['ssn 078-05-1120.', '078-05-1120'],
      ['SSN: 219099999', '219099999'],
      ['social security number 219 09 9999', '219 09 9999'],
    ]);
    assertClean(['000-12-3456', '666-12-3456', '912-34-5678', '123-00-4567', '123-45-0000', 'date 2026-01-15', 'v123-45-6789x', 'uuid 12345678-123-45-6789']);
  });

  it('finds phone numbers in E.164, North-American and labelled national forms', () => {
    assertFinds('phone', [
      ['sms +15555550123 sent', '+15555550123'],
      ['call +1 (202) 555-0143.', '+1 (202) 555-0143'],
      ['uk +44 20 7946 0958', '+44 20 7946 0958'],
      ['de +49 30 901820', '+49 30 901820'],
      ['(415) 555-0132', '(415) 555-0132'],
      ['office 202-555-0187', '202-555-0187'],
      ['office 202.555.0187', '202.555.0187'],
      ['1-800-555-0199', '1-800-555-0199'],
      ['tel: 020 7946 0958', '020 7946 0958'],
      ['Mobile no. 07700 900123', '07700 900123'],
      ['caller=+33 1 23 45 67 89', '+33 1 23 45 67 89'],
    ]);
    assertClean([
      'inet 192.168.100.254/24 brd 192.168.100.255',
      'diff: +10.100.200.254/24',
      'link/ether 52:54:00:12:34:01 cisco 5254.0012.3401',
      '2026-01-15T10:23:45.123456+05:30 Jan 15 10:23:45 +1000 2024',
      'LISTEN 0 4096 0.0.0.0:8080 users:(("node",pid=3012,fd=22))',
      'FRRouting 8.4.4, kernel 6.1.0-18-amd64, build 2026.01.15.1234',
      'router bgp 4200000001 neighbor 10.0.12.2 remote-as 65002',
      'RX: 1234 5678 9012 packets',
      '0x0040:  0013 0400 0020 7946 0958',
      'seq 123-456-7890123',
      'route-target 65001:100 rd 10.0.0.1:42',
    ]);
  });

  it('finds API keys by prefix and by label with a generated-looking value', () => {
    assertFinds('api_key', [
      ['AKIAIOSFODNN7EXAMPLE', 'AKIAIOSFODNN7EXAMPLE'],
      ['key sk_live_51HqLyjWDarjtT1zdp7dc', 'sk_live_51HqLyjWDarjtT1zdp7dc'],
      ['rk_test_4eC39HqLyjWDarjtT1zdp7dc', 'rk_test_4eC39HqLyjWDarjtT1zdp7dc'],
      ['GH ghp_DSHGjAbLJxYyn8mbQpCoZ89ssmCk3qno5O8T', 'ghp_DSHGjAbLJxYyn8mbQpCoZ89ssmCk3qno5O8T'],
      ['xoxp-1234567890-abcdefABCDEF', 'xoxp-1234567890-abcdefABCDEF'],
      ['X-API-Key: fg_k7m2qx9wrt4p_lWfVoHomAHmByzP5_wAjsCDZAjy3drAj_zfDk6QQNjI', 'fg_k7m2qx9wrt4p_lWfVoHomAHmByzP5_wAjsCDZAjy3drAj_zfDk6QQNjI'],
      ['api_key=Zx8Kq2Lm9Wp4Rt7Yb3Nc', 'Zx8Kq2Lm9Wp4Rt7Yb3Nc'],
      ['"client_secret": "u7Hk29LmQp0zXr5TbW3e"', 'u7Hk29LmQp0zXr5TbW3e'],
      ['--auth-token=7f3c2a1b9e8d4c6a5b0f1e2d', '7f3c2a1b9e8d4c6a5b0f1e2d'],
      ['aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'],
      ['PrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=', 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='],
      ['Authorization: Basic YWxpY2U6czNjcjN0UGFzc3dvcmQ=', 'YWxpY2U6czNjcjN0UGFzc3dvcmQ='],
    ]);
    assertClean([
      'key=/usr/share/keyrings/debian-archive-keyring.gpg',
      'token=short1A',
      'monkey=Zx8Kq2Lm9Wp4Rt7Yb3Nc',
      'public key: vCpxVmLeqB3Jm1vUkK+Nq8MVzEJmQy9mT7sA8m8cV1E=',
      'PublicKey = vCpxVmLeqB3Jm1vUkK+Nq8MVzEJmQy9mT7sA8m8cV1E=',
      'table inet fg_1a2b3c4d_router_one { }',
      'SELECT * FROM fg_auth_lookup_key($1)',
      'secret=aaaaaaaaaaaaaaaaaaaaaaaa',
      'The key fingerprint is SHA256:3tq0Gd8cGJ8aVlFrMxSbWkYpT4J0v1b8b2lC4xB3yQo',
    ]);
  });

  it('finds JWTs (JWS and JWE) and keeps the Authorization label', () => {
    const jws = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
    const header = Buffer.from('{"alg":"RSA-OAEP","enc":"A256GCM"}').toString('base64url');
    const jwe = `${header}.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGe.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6ji.XFBoMYUZodetZdvTiFvSkQ`;
    const noneAlg = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"x"}').toString('base64url')}.`;
    assert.equal(sanitizeText(`Authorization: Bearer ${jws}`).text, 'Authorization: Bearer [REDACTED:jwt]');
    assertFinds('jwt', [
      [`token ${jwe} end`, jwe],
      [`see ${noneAlg} end`, noneAlg],
      [`?id_token=${jws}&state=1`, jws],
      [`${jws}.`, jws],
    ]);
    // eyJ that is not a JWT header.
    assertClean(['eyJub3QiOiJqd3QifQ.e30.x', 'eyJabc', 'eyJhbGci.eyJhbGci.eyJhbGci.eyJhbGci']);
  });

  it('redacts whole PEM private key blocks, complete or cut short', () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString().trimEnd();
    const pkcs1 = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString().trimEnd();
    const encrypted = privateKey.export({ type: 'pkcs1', format: 'pem', cipher: 'aes-128-cbc', passphrase: 'x' }).toString().trimEnd();
    for (const block of [pkcs8, pkcs1, encrypted]) {
      assert.equal(sanitizeText(`$ cat key\n${block}\n$ ls\n`).text, '$ cat key\n[REDACTED:private_key]\n$ ls\n', block.split('\n')[0]);
    }
    // Output cut off in the middle of the block (a truncated check capture).
    const lines = pkcs8.split('\n');
    const truncated = `${lines.slice(0, 4).join('\n')}\n[output truncated]\n`;
    assert.equal(sanitizeText(truncated).text, '[REDACTED:private_key]\n[output truncated]\n');
    // CRLF transcripts.
    assert.equal(sanitizeText(`${pkcs1.replace(/\n/g, '\r\n')}\r\nok`).text, '[REDACTED:private_key]\r\nok');
    // A public key is not a secret.
    const pub = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    assert.equal(sanitizeText(pub).text, pub);
  });

  it('never changes text outside the findings (property)', () => {
    const labLine = fc.constantFrom(
      'inet 10.0.12.1/30 brd 10.0.12.3 scope global eth0',
      'link/ether 52:54:00:12:34:01 brd ff:ff:ff:ff:ff:ff',
      'O>* 10.0.2.0/24 [110/20] via 10.0.12.2, eth0, weight 1, 01:02:29',
      'LISTEN 0 4096 127.0.0.53%lo:53 0.0.0.0:*',
      'Jan 15 10:23:45 r1 sshd[812]: Accepted publickey for alice from 192.168.100.20 port 52344 ssh2',
      'nft: counter packets 4111111111 bytes 555123456789 accept # handle 17',
      'FRRouting 8.4.4 (r1) on Linux(6.1.0-18-amd64).',
    );
    const pii = fc.constantFrom<[PiiKind, string]>(
      ['email', 'eve@example.org'],
      ['ssn', '078-05-1120'],
      ['payment_card', '4111-1111-1111-1111'],
      ['phone', '+44 20 7946 0958'],
      ['api_key', 'AKIAIOSFODNN7EXAMPLE'],
    );
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            labLine.map((l) => ({ l })),
            pii.map((p) => ({ p })),
          ),
          { maxLength: 12 },
        ),
        (parts) => {
          const text = parts.map((x) => ('l' in x ? x.l : `note ${x.p[1]} end`)).join('\n');
          const expected = parts.map((x) => ('l' in x ? x.l : `note [REDACTED:${x.p[0]}] end`)).join('\n');
          assert.equal(sanitizeText(text).text, expected);
        },
      ),
      { numRuns: 200 },
    );
  });
});

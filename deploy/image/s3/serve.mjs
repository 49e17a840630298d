// The compose stack's S3 service (MinIO is not packaged in Debian and nothing may be downloaded):
// s3rver (npm, pinned by ./package-lock.json) stores the objects on the volume and listens on
// loopback inside the container only; in front of it, on the network, this gateway lets through
// only requests signed (SigV4, signed payload) with the one key pair from the secret files, within
// 15 minutes of their x-amz-date. s3rver alone accepts unsigned requests and never checks V4
// signatures. The gateway also does what a lifecycle rule does on MinIO: objects of the bucket
// older than S3_RETENTION_DAYS are deleted (hourly sweep). docs/deploy.md explains the choice.
import { createServer, request as forward } from 'node:http';
import { readFileSync } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import S3rver from 's3rver';

const env = (name, fallback) => process.env[name] ?? fallback;
const home = env('FROSTGATE_HOME', '/opt/frostgate');
// FrostGate's own SigV4 (the signer its S3 adapter uses) and its S3 adapter, for the sweep.
const { signRequest, sha256Hex } = await import(path.join(home, 'src/platform/storage/sigv4.ts'));
const { S3Storage } = await import(path.join(home, 'src/platform/storage/s3.ts'));

const secret = (name) => readFileSync(env(`${name}_FILE`, `/run/secrets/${name}`), 'utf8').trim();
const accessKeyId = secret('FG_S3_ACCESS_KEY_ID');
const secretAccessKey = secret('FG_S3_SECRET_ACCESS_KEY');
if (accessKeyId.length < 8 || secretAccessKey.length < 16) throw new Error('the S3 key pair from the secret files FG_S3_ACCESS_KEY_ID and FG_S3_SECRET_ACCESS_KEY is missing or too short (deploy/secrets/generate.sh)');
const bucket = env('S3_BUCKET', 'frostgate-results');
const port = Number(env('S3_PORT', '9000'));
const innerPort = port + 1;
const retentionDays = Number(env('S3_RETENTION_DAYS', '90'));
const MAX_BODY = 256 * 1024 * 1024;
const MAX_SKEW_MS = 15 * 60_000;

// s3rver's accounts: its well-known S3RVER/S3RVER pair goes, ours is the only one.
const AWSAccount = createRequire(import.meta.url)('s3rver/lib/models/account.js');
AWSAccount.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
AWSAccount.DUMMY_ACCOUNT.createKeyPair(accessKeyId, secretAccessKey);

const inner = new S3rver({ address: '127.0.0.1', port: innerPort, directory: env('S3_DATA_DIR', '/data'), silent: true, configureBuckets: [{ name: bucket }] });
await inner.run();

const log = (fields) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), logger: 'frostgate.s3', ...fields })}\n`);
const AUTH = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([a-z0-9-]+)\/s3\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

/** Why a request is refused, or undefined when it is signed with our key. */
function refusal(req, body) {
  const m = AUTH.exec(String(req.headers.authorization ?? ''));
  if (!m) return 'missing or malformed SigV4 authorization';
  const [, keyId, day, region, signedNames, signature] = m;
  if (keyId !== accessKeyId) return 'unknown access key';
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  const at = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!at || amzDate.slice(0, 8) !== day) return 'bad x-amz-date';
  const when = new Date(Date.UTC(+at[1], +at[2] - 1, +at[3], +at[4], +at[5], +at[6]));
  if (Math.abs(Date.now() - when.getTime()) > MAX_SKEW_MS) return 'x-amz-date too far from now';
  if (req.headers['x-amz-content-sha256'] !== sha256Hex(body)) return 'payload hash mismatch';
  const headers = {};
  for (const name of signedNames.split(';')) {
    if (name === 'host' || name === 'x-amz-date' || name === 'x-amz-content-sha256') continue;
    const value = req.headers[name];
    if (typeof value !== 'string') return `signed header ${name} missing`;
    headers[name] = value;
  }
  const url = new URL(req.url, `http://${req.headers.host}`);
  const expected = signRequest({ method: req.method, url, headers, body }, { accessKeyId, secretAccessKey, region }, when);
  const want = /Signature=([0-9a-f]{64})$/.exec(expected.authorization)[1];
  if (!expected.authorization.includes(`SignedHeaders=${signedNames},`)) return 'signed headers differ';
  return timingSafeEqual(Buffer.from(want), Buffer.from(signature)) ? undefined : 'signature mismatch';
}

function deny(res, status, code, message) {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`);
}

const gateway = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/health') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > MAX_BODY) req.destroy();
    else chunks.push(c);
  });
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const why = refusal(req, body);
    if (why) {
      log({ level: 'warn', event: 'refused', method: req.method, path: req.url?.split('?')[0], reason: why, remote: req.socket.remoteAddress });
      deny(res, 403, why === 'signature mismatch' ? 'SignatureDoesNotMatch' : 'AccessDenied', why);
      return;
    }
    // Path-style to s3rver: it would read a host name such as `s3` as a virtual-hosted bucket.
    const headers = { ...req.headers, host: `127.0.0.1:${innerPort}` };
    const out = forward({ host: '127.0.0.1', port: innerPort, method: req.method, path: req.url, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', (err) => deny(res, 502, 'InternalError', err.message));
    out.end(body);
  });
});
gateway.listen(port, env('S3_ADDRESS', '0.0.0.0'), () => log({ level: 'info', event: 'listening', port, bucket, retention_days: retentionDays }));

// The lifecycle rule MinIO would hold: the bucket's objects expire after retentionDays.
const store = new S3Storage({ endpoint: `http://127.0.0.1:${innerPort}`, bucket, region: 'us-east-1', accessKeyId, secretAccessKey });
async function sweep() {
  const cutoff = Date.now() - retentionDays * 86_400_000;
  let removed = 0;
  for (const o of await store.list('')) {
    if (o.modifiedAt.getTime() < cutoff) {
      await store.delete(o.key);
      removed++;
    }
  }
  if (removed > 0) log({ level: 'info', event: 'expired', removed, retention_days: retentionDays });
}
const sweeping = () => sweep().catch((err) => log({ level: 'error', event: 'sweep_failed', error: String(err?.message ?? err) }));
void sweeping();
setInterval(sweeping, 3_600_000).unref();

for (const signal of ['SIGTERM', 'SIGINT'])
  process.once(signal, () => {
    gateway.close();
    void inner.close().finally(() => process.exit(0));
  });

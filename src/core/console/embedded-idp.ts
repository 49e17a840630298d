import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import type { Configuration } from 'oidc-provider';

/** A person of the embedded provider: who a newcomer signs in as on `npm start`. */
export interface DemoUser {
  readonly username: string;
  readonly password: string;
  readonly subject: string;
  readonly name: string;
  readonly email: string;
  readonly groups: readonly string[];
}

export interface EmbeddedIdp {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly users: readonly DemoUser[];
  close(): Promise<void>;
}

export const EMBEDDED_CLIENT_ID = 'frostgate-console';

/** Two people, so the two-person rule can be tried on a fresh start; passwords are new each start. */
function demoUsers(group: string): DemoUser[] {
  const password = () => randomBytes(9).toString('base64url');
  return [
    { username: 'alice', password: password(), subject: 'demo-alice', name: 'Alice Example', email: 'alice@example.test', groups: [group] },
    { username: 'bob', password: password(), subject: 'demo-bob', name: 'Bob Example', email: 'bob@example.test', groups: [group] },
  ];
}

/** No form-action: Chromium holds the redirects after the post (back to the console) to it. */
const LOGIN_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid: string, error?: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in — FrostGate demo IdP</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:15px system-ui,sans-serif;background:#eef2f7;display:flex;justify-content:center;padding-top:10vh}
form{background:#fff;padding:2rem;border-radius:8px;box-shadow:0 2px 8px #0002;width:20rem}
label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;box-sizing:border-box}
button{margin-top:1.2rem;width:100%;padding:.6rem;background:#1d4ed8;color:#fff;border:0;border-radius:4px;font-size:15px}
.err{color:#b91c1c}.note{color:#555;font-size:13px}</style></head><body>
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<h1>FrostGate demo IdP</h1><p class="note">The embedded OpenID provider of a dev start. Its users and passwords are printed by <code>npm start</code>.</p>
${error ? `<p class="err" role="alert">${escapeHtml(error)}</p>` : ''}
<label for="username">Username</label><input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form></body></html>`;
}

async function formBody(req: http.IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 16_384) throw new Error('form too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

const sameSecret = (a: string, b: string): boolean => timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());

/**
 * An OpenID provider (oidc-provider) in this process, on its own loopback port, for dev and test
 * only (the config refuses it elsewhere): the console signs in through the same authorization-code
 * flow a production IdP serves, not through a bypass. One confidential client, the console, whose
 * redirect URI is known once the server listens.
 */
export async function startEmbeddedIdp(options: { redirectUri: string; group: string; host?: string }): Promise<EmbeddedIdp> {
  const users = demoUsers(options.group);
  const clientSecret = randomBytes(32).toString('base64url');
  let handler: http.RequestListener = (_req, res) => res.writeHead(503).end();
  const server = http.createServer((req, res) => handler(req, res));
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const issuer = `http://${host}:${(server.address() as AddressInfo).port}`;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: randomBytes(8).toString('hex') };
  const configuration: Configuration = {
    clients: [
      {
        client_id: EMBEDDED_CLIENT_ID,
        client_secret: clientSecret,
        redirect_uris: [options.redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email'], groups: ['groups'] },
    scopes: ['openid', 'profile', 'email', 'groups'],
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    findAccount: (_ctx, id) => {
      const user = users.find((u) => u.subject === id);
      if (!user) return undefined;
      return {
        accountId: user.subject,
        claims: () => ({ sub: user.subject, name: user.name, preferred_username: user.username, email: user.email, groups: [...user.groups] }),
      };
    },
  };
  // Loaded only where it runs (dev and test): no other process carries the provider.
  const { default: Provider } = await import('oidc-provider');
  const provider = new Provider(issuer, configuration);
  const callback = provider.callback();

  const interaction = async (req: http.IncomingMessage, res: http.ServerResponse, uid: string, isLogin: boolean): Promise<void> => {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new Error('interaction mismatch');
    if (details.prompt.name === 'login') {
      if (!isLogin) {
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'content-security-policy': LOGIN_CSP,
        });
        res.end(loginPage(uid));
        return;
      }
      const form = await formBody(req);
      const user = users.find((u) => u.username === form.get('username'));
      const password = form.get('password') ?? '';
      // Compared whatever the username, so a wrong name and a wrong password cost the same.
      const ok = sameSecret(password, user?.password ?? clientSecret) && user !== undefined;
      if (!ok) {
        res.writeHead(401, {
          'content-type': 'text/html; charset=utf-8',
          'content-security-policy': LOGIN_CSP,
        });
        res.end(loginPage(uid, 'Wrong username or password.'));
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: user.subject } }, { mergeWithLastSubmission: false });
      return;
    }
    // The console is this provider's only client, a first party: consent is given for it.
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session!.accountId, clientId: String(details.params.client_id) });
    if (!grant) throw new Error('grant not found');
    const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: details.grantId ? {} : { grantId } }, { mergeWithLastSubmission: true });
  };

  handler = (req, res) => {
    const match = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/.exec(new URL(req.url ?? '/', issuer).pathname);
    if (!match) return void callback(req, res);
    const isLogin = match[2] !== undefined && req.method === 'POST';
    interaction(req, res, match[1]!, isLogin).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`sign-in failed: ${(err as Error).message}; start again from the console`);
    });
  };

  return {
    issuer,
    clientId: EMBEDDED_CLIENT_ID,
    clientSecret,
    users,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

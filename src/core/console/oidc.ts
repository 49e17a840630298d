import * as client from 'openid-client';

/** What the console asks the IdP for; `groups` carries the claim FG_OIDC_GROUP_MAP maps. */
export const OIDC_SCOPES = 'openid profile email groups';

export interface OidcSettings {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly redirectUri: string;
  /** http:// issuers: dev and test only (the config refuses them elsewhere). */
  readonly allowHttp: boolean;
}

/** One sign-in in flight, kept in a signed cookie between /login and /auth/callback. */
export interface PendingSignIn {
  readonly verifier: string;
  readonly state: string;
  readonly nonce: string;
}

/**
 * The console's side of the OpenID Connect authorization-code flow with PKCE (openid-client),
 * against any standards IdP. Discovery happens on first use and is retried on the next sign-in
 * if the IdP was unreachable, so a slow IdP does not stop FrostGate from starting.
 */
export class OidcGateway {
  private discovered: Promise<client.Configuration> | undefined;

  constructor(readonly settings: OidcSettings) {}

  private configuration(): Promise<client.Configuration> {
    if (!this.discovered) {
      const { issuer, clientId, clientSecret, allowHttp } = this.settings;
      this.discovered = client
        .discovery(
          new URL(issuer),
          clientId,
          clientSecret,
          undefined,
          allowHttp && issuer.startsWith('http:') ? { execute: [client.allowInsecureRequests] } : {},
        )
        .catch((err: unknown) => {
          this.discovered = undefined;
          throw err;
        });
    }
    return this.discovered;
  }

  /** Where to send the browser, and what to keep until it comes back. */
  async begin(): Promise<{ url: string; pending: PendingSignIn }> {
    const config = await this.configuration();
    const pending: PendingSignIn = { verifier: client.randomPKCECodeVerifier(), state: client.randomState(), nonce: client.randomNonce() };
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.settings.redirectUri,
      scope: OIDC_SCOPES,
      code_challenge: await client.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
      // An operator console asks for the password each time, also right after signing out.
      prompt: 'login',
    });
    return { url: url.href, pending };
  }

  /** Redeems the code of the callback URL; the ID token's claims merged with userinfo's. */
  async finish(callbackUrl: URL, pending: PendingSignIn): Promise<Record<string, unknown>> {
    const config = await this.configuration();
    const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: pending.verifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
    });
    const idClaims = tokens.claims();
    if (!idClaims) throw new Error('the IdP returned no ID token');
    // Many IdPs put profile and group claims in userinfo only (oidc-provider does by default).
    const userinfo = config.serverMetadata().userinfo_endpoint ? await client.fetchUserInfo(config, tokens.access_token, idClaims.sub) : {};
    return { ...userinfo, ...idClaims };
  }
}

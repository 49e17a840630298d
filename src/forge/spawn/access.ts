import { TokenRefusedError, type ScenarioClaims, type ScenarioTokens } from '../tokens/scenario-tokens.js';

export interface ValidatedAccess extends ScenarioClaims {
  readonly jti: string;
  readonly expiresAt: Date;
}

/**
 * The access token of a scenario's access URL (`/v1/access/{scenario_id}?token=`): 30 minutes,
 * bound to one scenario, usable once. The access page (src/forge/access) calls validate()
 * before it opens anything; each refusal is a TokenRefusedError whose `problem` says why:
 * `expired`, `wrong_scenario`, `replayed`, `bad_signature`, `wrong_audience`, `malformed`.
 */
export class AccessTokens {
  constructor(private readonly tokens: Pick<ScenarioTokens, 'issue' | 'verify'>) {}

  async issue(claims: ScenarioClaims) {
    return this.tokens.issue('access', claims);
  }

  /** Verifies the token for `scenarioId` and spends it: a second call with the same token is `replayed`. */
  async validate(scenarioId: string, token: string | undefined): Promise<ValidatedAccess> {
    return spendAccessToken(this.tokens, scenarioId, token);
  }
}

/** The one rule for an access link's token: valid for this scenario, and spent by its first use. */
export async function spendAccessToken(tokens: Pick<ScenarioTokens, 'verify'>, scenarioId: string, token: string | undefined): Promise<ValidatedAccess> {
  if (!token) throw new TokenRefusedError('malformed', 'the access link has no token; ask for a new access link');
  return tokens.verify('access', token, { scenarioId, once: true });
}

/** Builds the learner's access URL under `baseUrl` (FG_PUBLIC_URL, or the spawn request's origin). */
export function accessUrl(baseUrl: string, scenarioId: string, token: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/v1/access/${encodeURIComponent(scenarioId)}?token=${encodeURIComponent(token)}`;
}

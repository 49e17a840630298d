import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../config/config.js';
import { BillingLedger } from '../../forge/spawn/billing.js';
import { EntitlementService, type IssuedDevReceipt } from '../../forge/spawn/entitlements.js';
import type { Receipt } from '../../forge/spawn/receipts.js';
import { TIERS, TRACKS } from '../../forge/templates/schema.js';
import { AppError, type ProblemCode } from '../../platform/http/problem.js';
import { JSON_OPTION, type Command } from '../command.js';
import { CliError, UsageError } from '../errors.js';
import { printErr, printJson, printLine } from '../output.js';
import { cliAuditTrail, withDatabase } from './db-session.js';

/** What both paths print: the entitlement granted and the receipt it came from. */
interface IssuedView {
  readonly entitlement_id: string;
  readonly entitlement_token?: string;
  readonly subject: string;
  readonly track: string;
  readonly tier: string;
  readonly credits: number;
  readonly expires_at: string;
  readonly receipt: string;
  readonly billing_mode: 'fake_charge';
}

export const receiptsCommand: Command = {
  name: 'receipts',
  options: {
    track: { type: 'string' },
    subject: { type: 'string' },
    tier: { type: 'string' },
    credits: { type: 'string' },
    days: { type: 'string' },
    tenant: { type: 'string' },
    url: { type: 'string' },
    'api-key': { type: 'string' },
    ...JSON_OPTION,
  },
  help: `Usage: frostgate receipts issue --track <netplus|ccna|cissp> --subject <learner> [--tier pro] [--credits 5] [--days 30]
                                 [--tenant <id>] [--url <server> --api-key <admin key>] [--json]

Issues a purchase receipt paid with BILLING_MODE=fake_charge and exchanges it at once: the
learner then holds an entitlement (tier, credits, expiry) and POST /v1/spawn works for them.
Refused unless BILLING_MODE=fake_charge in a dev, test or staging profile (as fake_charge is);
each grant is a billing event and an entry of the tenant's audit ledger.

With --url (and an admin key, --api-key or FG_API_KEY) it asks a running server
(POST /v1/receipts): the way on a default 'npm start', whose embedded database only the server
can open. Without --url it writes to the configured database directly (Postgres, or an embedded
database no server holds).

Options:
  --track <name>       netplus, ccna or cissp
  --subject <id>       the learner
  --tier <tier>        basic, pro or enterprise (default pro: every shipped lab)
  --credits <n>        labs the entitlement pays for (default 5)
  --days <n>           days until it ends (default 30)
  --tenant <id>        without --url: the tenant (default FG_BOOTSTRAP_TENANT); with --url: the key's tenant
  --url <server>       e.g. http://127.0.0.1:8080
  --api-key <key>      an admin key of the tenant (default: $FG_API_KEY)
  --json               machine-readable output
  -h, --help           this help

Examples:
  frostgate receipts issue --track ccna --subject alice --url http://127.0.0.1:8080 --api-key "$FG_ADMIN_KEY"
  FG_DB_URL=postgres://... frostgate receipts issue --track cissp --subject bob --tenant acme --credits 2`,
  async run({ values, positionals }) {
    if (positionals[0] !== 'issue' || positionals.length > 1)
      throw new UsageError(`expected 'receipts issue'${positionals[0] ? `, got 'receipts ${positionals.join(' ')}'` : ''}`);
    const track = values.track as string | undefined;
    const subject = values.subject as string | undefined;
    if (!track || !(TRACKS as readonly string[]).includes(track)) throw new UsageError(`--track must be one of ${TRACKS.join(', ')}`);
    if (!subject || !/^[A-Za-z0-9._@:+-]{1,128}$/.test(subject)) throw new UsageError('--subject <learner> is required (letters, digits and ._@:+-)');
    const tier = (values.tier as string | undefined) ?? 'pro';
    if (!(TIERS as readonly string[]).includes(tier)) throw new UsageError(`--tier must be one of ${TIERS.join(', ')}`);
    const credits = positiveInt(values.credits, '--credits', 5, 100);
    const days = positiveInt(values.days, '--days', 30, 365);
    const request = { track, subject, tier: tier as Receipt['tier'], credits, days };

    const issued = values.url
      ? await overHttp(values.url as string, (values['api-key'] as string | undefined) ?? process.env.FG_API_KEY, request)
      : await direct(values.tenant as string | undefined, request);
    if (values.json) printJson(issued);
    else {
      printLine(
        `entitlement ${issued.entitlement_id}: ${issued.subject} may spawn ${issued.credits} ${issued.track} lab(s) up to tier ${issued.tier}, until ${issued.expires_at}`,
      );
      printErr(`paid with fake_charge (nothing charged); receipt ${issued.receipt.slice(0, 24)}… already exchanged`);
      printErr(
        `next: POST /v1/spawn {"track":"${issued.track}","subject":"${issued.subject}","request_id":"<any unique id>"} (GET /v1/catalog?subject=${issued.subject} lists the labs)`,
      );
    }
    return 0;
  },
};

function positiveInt(value: string | boolean | undefined, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`${name} must be an integer from 1 to ${max}`);
  return n;
}

type IssueRequest = { track: string; subject: string; tier: Receipt['tier']; credits: number; days: number };

async function overHttp(url: string, apiKey: string | undefined, request: IssueRequest): Promise<IssuedView> {
  if (!apiKey) throw new UsageError('--url needs an admin key: --api-key <key> or FG_API_KEY');
  let res: Response;
  try {
    res = await fetch(new URL('/v1/receipts', url), {
      method: 'POST',
      headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
      body: JSON.stringify(request),
    });
  } catch (err) {
    throw new CliError(
      'unavailable',
      `cannot reach ${url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`,
      'is the server running (npm start)? check --url',
    );
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (res.status !== 201) {
    const code = typeof body.code === 'string' ? (body.code as ProblemCode) : 'internal';
    throw new AppError(code, typeof body.detail === 'string' ? body.detail : `the server answered ${res.status}`);
  }
  return body as unknown as IssuedView;
}

async function direct(tenant: string | undefined, request: IssueRequest): Promise<IssuedView> {
  const { config } = loadConfig();
  const tenantId = tenant ?? config.bootstrapTenant;
  try {
    return await withDatabase(async (db) => {
      // Without configured secrets (dev), the receipt is signed with a throwaway one: it is exchanged
      // here and never presented again; the entitlement token is left out, as no server could verify it.
      const secrets = {
        receiptHmacSecret: config.secrets.receiptHmacSecret ?? randomBytes(32).toString('base64'),
        etHmacSecret: config.secrets.etHmacSecret ?? randomBytes(32).toString('base64'),
      };
      const service = new EntitlementService(db, new BillingLedger(await cliAuditTrail(db)), secrets, config.forge.billingMode, config.env);
      const issued: IssuedDevReceipt = await service.issueDevReceipt(tenantId, request, 'cli');
      const e = issued.entitlement;
      return {
        entitlement_id: e.entitlement_id,
        ...(config.secrets.etHmacSecret ? { entitlement_token: issued.token } : {}),
        subject: e.subject,
        track: e.track,
        tier: e.tier,
        credits: e.credits,
        expires_at: e.expires_at,
        receipt: issued.receipt,
        billing_mode: 'fake_charge' as const,
      };
    });
  } catch (err) {
    if (err instanceof CliError && err.code === 'database_locked')
      throw new CliError(
        'database_locked',
        err.message,
        'a server holds the embedded database: add --url http://127.0.0.1:8080 --api-key <its admin key> to ask it',
      );
    throw err;
  }
}

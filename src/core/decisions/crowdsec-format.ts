/** FrostGate's blocks in the shapes CrowdSec's bouncers read: decision objects, Go durations, JSON. */

/**
 * FrostGate's blocks in CrowdSec's Local API bouncer shape, so CrowdSec's bouncers (firewall,
 * nginx, traefik, custom) enforce them unmodified. Only applied `block_ip` mitigations are
 * decisions here (type `ban`, scope `Ip`); one IP with several blocks in force is one decision,
 * the one lasting longest, so an expiring block never lifts an IP another block still covers.
 */
export interface CrowdSecDecision {
  readonly id: number;
  readonly origin: 'frostgate';
  readonly type: 'ban';
  readonly scope: 'Ip';
  readonly value: string;
  /** Remaining time, Go's time.Duration format (`3h59m58.5s`); negative once expired. */
  readonly duration: string;
  readonly until: string;
  readonly scenario: string;
  readonly simulated: false;
}

/**
 * Go's time.Duration.String() at millisecond precision: `1h0m5s`, `59m58.123s`, `250ms`, `-3s`.
 * Integer arithmetic only: a startup formats one per block in force (10,000), and toFixed with a
 * regular expression cost microseconds each.
 */
export function goDuration(ms: number): string {
  let rest = Math.round(ms);
  const sign = rest < 0 ? '-' : '';
  if (rest < 0) rest = -rest;
  if (rest === 0) return '0s';
  if (rest < 1000) return `${sign}${rest}ms`;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const whole = Math.floor(rest / 1000);
  const frac = rest - whole * 1000;
  // The fraction without trailing zeros, as Go prints it: 5s, 5.5s, 5.05s, 5.005s.
  const s =
    frac === 0
      ? `${whole}`
      : frac % 100 === 0
        ? `${whole}.${frac / 100}`
        : frac % 10 === 0
          ? `${whole}.${frac < 100 ? '0' : ''}${frac / 10}`
          : `${whole}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}`;
  if (h > 0) return `${sign}${h}h${m}m${s}s`;
  if (m > 0) return `${sign}${m}m${s}s`;
  return `${sign}${s}s`;
}

/** A decisions row that carries a block, as the bouncer set reads it. */
export interface BlockRow {
  ledger_index: number | string;
  entity: string;
  rules_triggered: string[];
  block_until: Date | string;
}

/** A block as the bouncer set holds it (in force, or ended recently); `untilMs` saves a date parse per answer. */
export interface Block {
  readonly ledgerIndex: number;
  readonly ip: string;
  readonly scenario: string;
  readonly untilMs: number;
  /**
   * Its CrowdSecDecision as JSON before and after the duration, the one member that changes, built
   * once: a startup of 10,000 blocks is then a concatenation per block instead of 10,000 objects
   * to build and serialize (docs/bouncers.md has the figures).
   */
  readonly jsonHead: string;
  readonly jsonTail: string;
}

/** The block of a decisions row, its JSON fragments built once. */
export function toBlock(row: BlockRow): Block {
  const ledgerIndex = Number(row.ledger_index);
  const ip = row.entity.slice(3);
  const scenario = row.rules_triggered.join(',') || 'frostgate';
  const untilMs = new Date(row.block_until).getTime();
  return {
    ledgerIndex,
    ip,
    scenario,
    untilMs,
    jsonHead: `{"id":${ledgerIndex + 1},"origin":"frostgate","type":"ban","scope":"Ip","value":${JSON.stringify(ip)},"duration":"`,
    jsonTail: `","until":"${new Date(untilMs).toISOString()}","scenario":${JSON.stringify(scenario)},"simulated":false}`,
  };
}

/** Blocks as a JSON array of CrowdSecDecision, durations as of `nowMs`. */
export function blocksJson(blocks: readonly Block[], nowMs: number): string {
  if (blocks.length === 0) return '[]';
  const parts = new Array<string>(blocks.length);
  for (let i = 0; i < blocks.length; i++) parts[i] = blocks[i]!.jsonHead + goDuration(blocks[i]!.untilMs - nowMs) + blocks[i]!.jsonTail;
  return `[${parts.join(',')}]`;
}

/** A block as CrowdSec's API answers it, its remaining time as of `nowMs`. */
export function toDecision(block: Block, nowMs: number): CrowdSecDecision {
  return {
    id: block.ledgerIndex + 1,
    origin: 'frostgate',
    type: 'ban',
    scope: 'Ip',
    value: block.ip,
    duration: goDuration(block.untilMs - nowMs),
    until: new Date(block.untilMs).toISOString(),
    scenario: block.scenario,
    simulated: false,
  };
}

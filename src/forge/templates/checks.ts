import { Type, type Static, type TSchema } from '@sinclair/typebox';

/**
 * The check types of `successCriteria[].check`, one TypeBox schema each. The template schema
 * only fixes `check.type` to one of CHECK_TYPES; semantic.ts validates the rest of a check
 * against the schema of its type (so an error names the field of that type, not "expected
 * union"), and scoring/checks implements each type.
 *
 * Common to every check that runs something in a device:
 *   timeout_s   deadline of one attempt (default 10)
 *   wait_s      convergence: retry until the check passes or this many seconds passed (default 0:
 *               one attempt); for OSPF/BGP adjacencies and services that take a while to come up
 *   interval_s  pause between attempts (default 1)
 */

const DeviceRef = Type.String({ pattern: '^[a-z][a-z0-9-]{0,23}$', description: 'a device of the template' });
const Seconds = (description: string, max = 600) => Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: max, description }));
const timing = {
  timeout_s: Seconds('deadline of one attempt, default 10', 120),
  wait_s: Seconds('retry until passing or this many seconds passed, default 0 (one attempt)'),
  interval_s: Seconds('pause between attempts, default 1', 60),
};
const Presence = Type.Optional(Type.Union([Type.Literal('present'), Type.Literal('absent')], { description: 'default present' }));
const Regex = (description: string) => Type.String({ minLength: 1, maxLength: 2000, description });
const IPV4 = '^(?:\\d{1,3}\\.){3}\\d{1,3}$';
const IPV4_CIDR = '^(?:\\d{1,3}\\.){3}\\d{1,3}/\\d{1,2}$';
const strict = { additionalProperties: false } as const;

/** Where a network check runs from (see docs/templates.md, "Vantage points"). */
const vantage = {
  vantage: Type.Optional(
    Type.Union([Type.Literal('probe'), Type.Literal('device')], {
      description:
        "probe (default): the grader's own namespace on the device's networks, with the device's template routes; device: inside the device's network namespace (what the learner configured on it counts)",
    }),
  ),
};

export const CommandCheck = Type.Object(
  {
    type: Type.Literal('command'),
    device: DeviceRef,
    run: Type.Union([Type.String({ minLength: 1, description: 'shell line (/bin/sh -c)' }), Type.Array(Type.String(), { minItems: 1, description: 'argv' })]),
    context: Type.Optional(
      Type.Union([Type.Literal('net'), Type.Literal('mount'), Type.Literal('learner')], {
        description:
          "net (default): host binaries in the device's network namespace; mount: the device's filesystem view; learner: exactly as the learner runs it",
      }),
    ),
    exit_code: Type.Optional(Type.Integer({ minimum: 0, maximum: 255, description: 'expected exit code, default 0' })),
    expect_stdout: Type.Optional(Type.String({ description: 'stdout contains this text' })),
    stdout_regex: Type.Optional(Regex('stdout matches this regular expression')),
    stdout_not_regex: Type.Optional(Regex('stdout does not match this regular expression')),
    stdout_equals: Type.Optional(Type.String({ description: 'stdout equals this, trailing whitespace ignored' })),
    json_path: Type.Optional(
      Type.String({ pattern: '^\\$(\\.[A-Za-z0-9_-]+|\\[\\d+\\])*$', description: 'stdout is JSON; the value at this path ($.a.b[0])…' }),
    ),
    json_equals: Type.Optional(Type.Unknown({ description: '…equals this value' })),
    ...timing,
  },
  strict,
);

export const FileCheck = Type.Object(
  {
    type: Type.Literal('file'),
    device: DeviceRef,
    path: Type.String({ pattern: '^/', description: 'absolute path in the device' }),
    state: Presence,
    regex: Type.Optional(Regex('content matches')),
    not_regex: Type.Optional(Regex('content does not match')),
    sha256: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
    mode: Type.Optional(Type.String({ pattern: '^0?[0-7]{3,4}$', description: 'octal permission bits, e.g. "0600"' })),
    owner: Type.Optional(Type.String({ minLength: 1, description: 'owner name as seen inside the device, e.g. root' })),
    ...timing,
  },
  strict,
);

export const InterfaceAddrCheck = Type.Object(
  {
    type: Type.Literal('interface_addr'),
    device: DeviceRef,
    address: Type.String({ pattern: IPV4_CIDR, description: 'address with prefix length' }),
    interface: Type.Optional(Type.String({ minLength: 1, maxLength: 15 })),
    state: Presence,
    ...timing,
  },
  strict,
);

export const RouteCheck = Type.Object(
  {
    type: Type.Literal('route'),
    device: DeviceRef,
    prefix: Type.String({ minLength: 1, description: '"default" or a CIDR' }),
    via: Type.Optional(Type.String({ pattern: IPV4, description: 'next hop' })),
    interface: Type.Optional(Type.String({ minLength: 1, maxLength: 15 })),
    source: Type.Optional(Type.Union([Type.Literal('kernel'), Type.Literal('frr')], { description: 'kernel table (default) or FRR RIB' })),
    protocol: Type.Optional(Type.String({ minLength: 1, description: 'FRR only: ospf, bgp, static, connected…' })),
    state: Presence,
    ...timing,
  },
  strict,
);

export const ReachabilityCheck = Type.Object(
  {
    type: Type.Literal('reachability'),
    from: DeviceRef,
    to: Type.String({ pattern: `${IPV4.slice(0, -1)}(?::\\d{1,5})?$`, description: 'address or address:port' }),
    proto: Type.Optional(Type.Union([Type.Literal('icmp'), Type.Literal('tcp')], { description: 'icmp (default without a port) or tcp' })),
    expect: Type.Optional(Type.Union([Type.Literal('reach'), Type.Literal('no_reach')], { description: 'default reach' })),
    ...vantage,
    ...timing,
  },
  strict,
);

export const OspfNeighborCheck = Type.Object(
  {
    type: Type.Literal('ospf_neighbor'),
    device: DeviceRef,
    neighbor: Type.String({ pattern: IPV4, description: 'neighbor router id, or its interface address' }),
    state: Type.Optional(Type.String({ minLength: 1, description: 'expected state prefix, default Full' })),
    ...timing,
  },
  strict,
);

export const BgpSessionCheck = Type.Object(
  {
    type: Type.Literal('bgp_session'),
    device: DeviceRef,
    peer: Type.String({ pattern: IPV4 }),
    state: Type.Optional(Type.String({ minLength: 1, description: 'default Established' })),
    min_prefixes: Type.Optional(Type.Integer({ minimum: 0, description: 'at least this many prefixes received' })),
    ...timing,
  },
  strict,
);

export const ListeningCheck = Type.Object(
  {
    type: Type.Literal('listening'),
    device: DeviceRef,
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    proto: Type.Optional(Type.Union([Type.Literal('tcp'), Type.Literal('udp')], { description: 'default tcp' })),
    address: Type.Optional(Type.String({ pattern: IPV4, description: 'bound address (0.0.0.0 matches only a wildcard bind)' })),
    process: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'name of the listening process' })),
    state: Presence,
    ...timing,
  },
  strict,
);

export const ProcessCheck = Type.Object(
  {
    type: Type.Literal('process'),
    device: DeviceRef,
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 15, description: 'process name (comm)' })),
    cmdline_regex: Type.Optional(Regex('full command line matches')),
    state: Type.Optional(Type.Union([Type.Literal('running'), Type.Literal('absent')], { description: 'default running' })),
    ...timing,
  },
  strict,
);

export const SysctlCheck = Type.Object(
  {
    type: Type.Literal('sysctl'),
    device: DeviceRef,
    key: Type.String({ pattern: '^[a-z0-9_]+(\\.[A-Za-z0-9_-]+)+$' }),
    equals: Type.String({ description: 'expected value, whitespace-normalised' }),
    ...timing,
  },
  strict,
);

export const DnsCheck = Type.Object(
  {
    type: Type.Literal('dns'),
    from: DeviceRef,
    server: Type.String({ pattern: IPV4 }),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'default 53' })),
    name: Type.String({ minLength: 1, maxLength: 253 }),
    record: Type.Optional(
      Type.Union(
        ['A', 'AAAA', 'CNAME', 'MX', 'TXT', 'PTR', 'NS', 'SOA'].map((t) => Type.Literal(t)),
        { description: 'default A' },
      ),
    ),
    expect: Type.Optional(Type.Array(Type.String(), { description: 'these values are among the answers' })),
    expect_regex: Type.Optional(Regex('some answer matches')),
    rcode: Type.Optional(Type.String({ pattern: '^[A-Z]+$', description: 'expected status, default NOERROR' })),
    ...vantage,
    ...timing,
  },
  strict,
);

export const HttpCheck = Type.Object(
  {
    type: Type.Literal('http'),
    from: DeviceRef,
    url: Type.String({ pattern: '^https?://', description: 'http(s) URL of a lab address' }),
    method: Type.Optional(Type.Union(['GET', 'HEAD', 'POST'].map((m) => Type.Literal(m)))),
    status: Type.Optional(Type.Integer({ minimum: 100, maximum: 599, description: 'expected status, default 200' })),
    body_regex: Type.Optional(Regex('body matches')),
    body_not_regex: Type.Optional(Regex('body does not match')),
    insecure: Type.Optional(Type.Boolean({ description: 'accept any TLS certificate' })),
    ...vantage,
    ...timing,
  },
  strict,
);

export const NftRuleCheck = Type.Object(
  {
    type: Type.Literal('nft_rule'),
    device: DeviceRef,
    regex: Regex("a rule line of the learner's ruleset matches (FrostGate's own fg_* egress tables are ignored)"),
    table: Type.Optional(Type.String({ minLength: 1, description: 'only rules of this table' })),
    chain: Type.Optional(Type.String({ minLength: 1, description: 'only rules of this chain' })),
    hook: Type.Optional(
      Type.Union(
        ['prerouting', 'input', 'forward', 'output', 'postrouting', 'ingress'].map((h) => Type.Literal(h)),
        { description: 'only rules that take effect at this hook: in a filter chain attached to it, or jumped to from one' },
      ),
    ),
    state: Presence,
    ...timing,
  },
  strict,
);

export const AnswerCheck = Type.Object(
  {
    type: Type.Literal('answer'),
    question: Type.String({ minLength: 1 }),
    exact: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'accepted answers (trimmed)' })),
    regex: Type.Optional(Regex('accepted answers match')),
    variable: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_]{0,31}$', description: "the scenario's value of this template variable" })),
    case_sensitive: Type.Optional(Type.Boolean({ description: 'default false' })),
  },
  strict,
);

export const QuizQuestion = Type.Union([
  Type.Object(
    {
      id: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,31}$' }),
      kind: Type.Literal('choice'),
      prompt: Type.String({ minLength: 1 }),
      choices: Type.Array(Type.String({ minLength: 1 }), { minItems: 2, maxItems: 12 }),
      correct: Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1, description: 'indices of the right choices (all of them must be picked, no other)' }),
    },
    strict,
  ),
  Type.Object(
    {
      id: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,31}$' }),
      kind: Type.Literal('matching'),
      prompt: Type.String({ minLength: 1 }),
      pairs: Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), { description: 'left item -> its right item' }),
    },
    strict,
  ),
]);

export const QuizCheck = Type.Object(
  {
    type: Type.Literal('quiz'),
    questions: Type.Array(QuizQuestion, { minItems: 1, maxItems: 50 }),
    min_correct: Type.Optional(Type.Integer({ minimum: 1, description: 'questions that must be right, default all' })),
  },
  strict,
);

/** Leaf checks by type. */
export const LEAF_CHECKS = {
  command: CommandCheck,
  file: FileCheck,
  interface_addr: InterfaceAddrCheck,
  route: RouteCheck,
  reachability: ReachabilityCheck,
  ospf_neighbor: OspfNeighborCheck,
  bgp_session: BgpSessionCheck,
  listening: ListeningCheck,
  process: ProcessCheck,
  sysctl: SysctlCheck,
  dns: DnsCheck,
  http: HttpCheck,
  nft_rule: NftRuleCheck,
  answer: AnswerCheck,
  quiz: QuizCheck,
} as const satisfies Record<string, TSchema>;

export type LeafCheckType = keyof typeof LEAF_CHECKS;
export const LEAF_CHECK_TYPES = Object.keys(LEAF_CHECKS) as LeafCheckType[];

/** Combinators: all / any of the listed checks, or at least `k` of them. */
export const COMBINATOR_TYPES = ['all', 'any', 'at_least'] as const;
export type CombinatorType = (typeof COMBINATOR_TYPES)[number];
export const CHECK_TYPES: readonly string[] = [...LEAF_CHECK_TYPES, ...COMBINATOR_TYPES];

export type CommandCheckSpec = Static<typeof CommandCheck>;
export type FileCheckSpec = Static<typeof FileCheck>;
export type InterfaceAddrCheckSpec = Static<typeof InterfaceAddrCheck>;
export type RouteCheckSpec = Static<typeof RouteCheck>;
export type ReachabilityCheckSpec = Static<typeof ReachabilityCheck>;
export type OspfNeighborCheckSpec = Static<typeof OspfNeighborCheck>;
export type BgpSessionCheckSpec = Static<typeof BgpSessionCheck>;
export type ListeningCheckSpec = Static<typeof ListeningCheck>;
export type ProcessCheckSpec = Static<typeof ProcessCheck>;
export type SysctlCheckSpec = Static<typeof SysctlCheck>;
export type DnsCheckSpec = Static<typeof DnsCheck>;
export type HttpCheckSpec = Static<typeof HttpCheck>;
export type NftRuleCheckSpec = Static<typeof NftRuleCheck>;
export type AnswerCheckSpec = Static<typeof AnswerCheck>;
export type QuizCheckSpec = Static<typeof QuizCheck>;
export type QuizQuestionSpec = Static<typeof QuizQuestion>;

export type LeafCheckSpec = { [K in LeafCheckType]: Static<(typeof LEAF_CHECKS)[K]> }[LeafCheckType];

export interface CombinatorCheckSpec {
  readonly type: CombinatorType;
  readonly checks: readonly CheckSpec[];
  /** at_least only. */
  readonly k?: number;
}

export type CheckSpec = LeafCheckSpec | CombinatorCheckSpec;

/** Per-instance variables: generated per scenario so answers cannot be shared between learners. */
export const VariableSchema = Type.Union([
  Type.Object(
    {
      kind: Type.Literal('token'),
      length: Type.Optional(Type.Integer({ minimum: 4, maximum: 64, description: 'hex digits, default 16' })),
      prefix: Type.Optional(Type.String({ maxLength: 32 })),
      suffix: Type.Optional(Type.String({ maxLength: 32 })),
    },
    strict,
  ),
  Type.Object({ kind: Type.Literal('password'), length: Type.Optional(Type.Integer({ minimum: 8, maximum: 64, description: 'default 16' })) }, strict),
  Type.Object(
    {
      kind: Type.Literal('ipv4'),
      cidr: Type.String({ pattern: IPV4_CIDR, description: 'a host address of this network (not network, broadcast or first address)' }),
    },
    strict,
  ),
  Type.Object({ kind: Type.Literal('choice'), values: Type.Array(Type.String(), { minItems: 1, maxItems: 256 }) }, strict),
]);
export type VariableSpec = Static<typeof VariableSchema>;

export const HintSchema = Type.Object(
  {
    text: Type.String({ minLength: 1 }),
    penalty: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, description: 'points taken from this criterion when the hint was revealed, default 0' })),
  },
  strict,
);

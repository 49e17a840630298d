import { Type, type Static } from '@sinclair/typebox';
import { CHECK_TYPES, HintSchema, VariableSchema } from './checks.js';

/**
 * The lab template format (YAML on disk), as a JSON Schema written in TypeBox. This schema
 * checks shape; semantic.ts checks what a schema cannot (CIDRs, references between parts,
 * addresses inside their networks). `frostgate template validate` runs both.
 */

const Name = (pattern: string, description: string) => Type.String({ pattern, description });

export const TRACKS = ['netplus', 'ccna', 'cissp'] as const;
export const TIERS = ['basic', 'pro', 'enterprise'] as const;
export const DIFFICULTIES = ['beginner', 'intermediate', 'advanced'] as const;

export const InterfaceSchema = Type.Object(
  {
    network: Type.String({ minLength: 1, description: 'name of a network in topology.networks' }),
    address: Type.String({ minLength: 1, description: 'address with prefix length, e.g. 10.0.1.10/24' }),
  },
  { additionalProperties: false },
);

export const RouteSchema = Type.Object(
  {
    to: Type.String({ minLength: 1, description: '"default" or a CIDR' }),
    via: Type.String({ minLength: 1, description: 'next hop on one of the device networks' }),
  },
  { additionalProperties: false },
);

export const FileSchema = Type.Object(
  {
    path: Type.String({ minLength: 1, description: 'absolute path under /etc, /root, /home, /tmp, /var or /run' }),
    content: Type.String(),
    mode: Type.Optional(
      Type.Union([Type.Integer({ minimum: 0, maximum: 0o7777 }), Type.String({ pattern: '^0?[0-7]{3,4}$' })], {
        description: 'Unix mode, octal string ("0644") or integer',
      }),
    ),
  },
  { additionalProperties: false },
);

export const DeviceSchema = Type.Object(
  {
    name: Name('^[a-z][a-z0-9-]{0,23}$', 'device name, also its hostname'),
    kind: Type.Union([Type.Literal('host'), Type.Literal('router')]),
    interfaces: Type.Array(InterfaceSchema, { maxItems: 8 }),
    routes: Type.Optional(Type.Array(RouteSchema)),
    files: Type.Optional(Type.Array(FileSchema)),
    startup: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'shell lines run as the learner once the device is up' })),
    frr_config: Type.Optional(Type.String({ description: 'integrated frr.conf text, routers only' })),
  },
  { additionalProperties: false },
);

export const NetworkSchema = Type.Object(
  {
    name: Name('^[a-z][a-z0-9-]{0,31}$', 'network name'),
    cidr: Type.String({ minLength: 1, description: 'IPv4 network, e.g. 10.0.1.0/24' }),
  },
  { additionalProperties: false },
);

export const LimitsSchema = Type.Object(
  {
    memory_mb: Type.Optional(Type.Integer({ minimum: 16, maximum: 65536 })),
    pids: Type.Optional(Type.Integer({ minimum: 16, maximum: 65536 })),
    cpu_shares: Type.Optional(Type.Integer({ minimum: 2, maximum: 262144 })),
    disk_mb: Type.Optional(Type.Integer({ minimum: 1, maximum: 65536, description: "each device's writable storage (/etc, /root, /home, /tmp, /var, /run)" })),
  },
  { additionalProperties: false },
);

export const TopologySchema = Type.Object(
  {
    networks: Type.Array(NetworkSchema, { maxItems: 32 }),
    devices: Type.Array(DeviceSchema, { minItems: 1, maxItems: 64 }),
    limits: Type.Optional(LimitsSchema),
  },
  { additionalProperties: false },
);

/**
 * One graded check. Here only `type` is fixed (one of CHECK_TYPES); semantic.ts validates the rest
 * against that type's own schema in checks.ts, so errors name the field of that type. Combinators
 * (`all`, `any`, `at_least` with `k`) hold further checks in `checks`.
 */
export const CheckSchema = Type.Object(
  {
    type: Type.Union(
      CHECK_TYPES.map((t) => Type.Literal(t)),
      { description: 'check type, see docs/templates.md' },
    ),
  },
  { additionalProperties: true },
);

export const CriterionSchema = Type.Object(
  {
    id: Name('^[a-z][a-z0-9_-]{0,63}$', 'stable criterion id'),
    description: Type.String({ minLength: 1 }),
    points: Type.Integer({ minimum: 0, maximum: 1000 }),
    check: CheckSchema,
    hints: Type.Optional(Type.Array(HintSchema, { maxItems: 10, description: 'revealed on request; a revealed hint costs its penalty' })),
    depends_on: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'criteria that must pass first; otherwise this one is skipped' })),
  },
  { additionalProperties: false },
);

export const EgressRuleSchema = Type.Object(
  {
    device: Type.Optional(Type.String({ minLength: 1 })),
    cidr: Type.Optional(Type.String({ minLength: 1 })),
    proto: Type.Union([Type.Literal('tcp'), Type.Literal('udp'), Type.Literal('icmp'), Type.Literal('any')]),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    from: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  },
  { additionalProperties: false },
);

export const EgressSchema = Type.Object(
  {
    profile: Name('^[a-z][a-z0-9-]{0,31}$', 'profile name; "deny-all" with no allow entries is the default'),
    allow: Type.Optional(Type.Array(EgressRuleSchema)),
  },
  { additionalProperties: false },
);

export const TemplateSchema = Type.Object(
  {
    id: Name('^[a-z][a-z0-9-]{2,63}$', 'template id'),
    version: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$', description: 'defaults to a hash of the content' })),
    title: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.Optional(Type.String()),
    track: Type.Union(TRACKS.map((t) => Type.Literal(t))),
    tier: Type.Union(TIERS.map((t) => Type.Literal(t))),
    ttl_minutes: Type.Integer({ minimum: 5, maximum: 1440 }),
    difficulty: Type.Optional(
      Type.Union(
        DIFFICULTIES.map((d) => Type.Literal(d)),
        { description: 'shown in the catalogue (GET /v1/catalog)' },
      ),
    ),
    max_extensions: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 20,
        description: 'times a learner may extend a lab of this template (15 minutes each); unset: its tier default in policies/extend.cedar',
      }),
    ),
    topology: TopologySchema,
    tasks: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
    hints: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    variables: Type.Optional(
      Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]{0,31}$' }), VariableSchema, {
        description: 'per-scenario values, used as {{name}} in files and startup lines and by answer checks',
      }),
    ),
    successCriteria: Type.Array(CriterionSchema, { minItems: 1 }),
    egress: Type.Optional(EgressSchema),
  },
  { additionalProperties: false, $id: 'https://frostgate.dev/schemas/lab-template.json', title: 'FrostGate lab template' },
);

export type TemplateDocument = Static<typeof TemplateSchema>;
export type TemplateDevice = Static<typeof DeviceSchema>;
export type SuccessCriterion = Static<typeof CriterionSchema>;
export type Track = (typeof TRACKS)[number];
export type Tier = (typeof TIERS)[number];

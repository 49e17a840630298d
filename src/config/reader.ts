import { VARIABLES, type VariableSpec } from './variables.js';

/** The process environment, or a test's stand-in for it. */
export type Env = Readonly<Record<string, string | undefined>>;

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off', '']);

/** Reads declared variables (defaults from variables.ts), collecting every problem instead of throwing. */
export class Reader {
  readonly errors: string[] = [];
  constructor(private readonly env: Env) {}

  private spec(name: string): VariableSpec {
    const spec = VARIABLES.find((v) => v.name === name);
    if (!spec) throw new Error(`config variable ${name} is not declared in variables.ts`);
    return spec;
  }

  raw(name: string): string | undefined {
    const value = this.env[name];
    if (value !== undefined && value !== '') return value;
    return this.spec(name).default;
  }

  isSet(name: string): boolean {
    const value = this.env[name];
    return value !== undefined && value !== '';
  }

  string(name: string): string | undefined {
    return this.raw(name);
  }

  int(name: string, min: number, max: number): number {
    const raw = this.raw(name) ?? '0';
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.errors.push(`${name}=${JSON.stringify(raw)} is not an integer between ${min} and ${max}`);
      return Number(this.spec(name).default ?? min);
    }
    return n;
  }

  bool(name: string): boolean {
    const raw = (this.raw(name) ?? '').toLowerCase();
    if (TRUE.has(raw)) return true;
    if (FALSE.has(raw)) return false;
    this.errors.push(`${name}=${JSON.stringify(raw)} is not a boolean (use true/false or 1/0)`);
    return false;
  }

  oneOf<T extends string>(name: string, values: readonly T[]): T | undefined {
    const raw = this.raw(name);
    if (raw === undefined) return undefined;
    if ((values as readonly string[]).includes(raw)) return raw as T;
    this.errors.push(`${name}=${JSON.stringify(raw)} must be one of: ${values.join(', ')}`);
    return undefined;
  }

  url(name: string, protocols: readonly string[]): string | undefined {
    const raw = this.raw(name);
    if (raw === undefined) return undefined;
    try {
      const parsed = new URL(raw);
      if (!protocols.includes(parsed.protocol)) {
        this.errors.push(`${name} must use ${protocols.join(' or ')} (got ${parsed.protocol})`);
        return undefined;
      }
      return raw;
    } catch {
      this.errors.push(`${name} is not a valid URL`);
      return undefined;
    }
  }
}

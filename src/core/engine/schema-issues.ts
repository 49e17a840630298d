import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value';
import { pointerTokens } from '../../platform/json-pointer.js';
import type { ValidationIssue } from './errors.js';

/** `/rules/3/when/all/0/cidr` -> `rules[3].when.all[0].cidr` */
export function pointerToPath(pointer: string): string {
  let out = '';
  for (const segment of pointerTokens(pointer)) {
    if (/^\d+$/.test(segment)) out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `"${value.length > 60 ? `${value.slice(0, 60)}...` : value}"`;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${value.toString()}`;
  return typeof value;
}

function message(error: ValueError): string {
  const s = error.schema as Record<string, unknown>;
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return 'is required';
    case ValueErrorType.ObjectAdditionalProperties:
      return 'is not a known field';
    case ValueErrorType.String:
      return `must be a string, got ${describe(error.value)}`;
    case ValueErrorType.StringPattern:
      return `${describe(error.value)} must match ${String(s.pattern)}`;
    case ValueErrorType.StringMinLength:
      return `must be at least ${String(s.minLength)} characters`;
    case ValueErrorType.StringMaxLength:
      return `must be at most ${String(s.maxLength)} characters`;
    case ValueErrorType.Number:
    case ValueErrorType.Integer:
      return `must be ${error.type === ValueErrorType.Integer ? 'an integer' : 'a number'}, got ${describe(error.value)}`;
    case ValueErrorType.NumberMinimum:
    case ValueErrorType.IntegerMinimum:
      return `must be >= ${String(s.minimum)}, got ${describe(error.value)}`;
    case ValueErrorType.NumberMaximum:
    case ValueErrorType.IntegerMaximum:
      return `must be <= ${String(s.maximum)}, got ${describe(error.value)}`;
    case ValueErrorType.ArrayMinItems:
      return `must have at least ${String(s.minItems)} item(s)`;
    case ValueErrorType.ArrayMaxItems:
      return `must have at most ${String(s.maxItems)} items`;
    case ValueErrorType.Union: {
      const variants = (s.anyOf as Array<Record<string, unknown>> | undefined) ?? [];
      const names = variants.map((v) => (v.const !== undefined ? JSON.stringify(v.const) : String(v.type)));
      return `must be one of ${names.join(', ')}, got ${describe(error.value)}`;
    }
    default:
      return `${error.message.toLowerCase()}, got ${describe(error.value)}`;
  }
}

const checks = new WeakMap<TSchema, TypeCheck<TSchema>>();
function compiled(schema: TSchema): TypeCheck<TSchema> {
  let check = checks.get(schema);
  if (!check) checks.set(schema, (check = TypeCompiler.Compile(schema)));
  return check;
}

/**
 * Structural problems of a value against a TypeBox schema, one per path (the first TypeBox
 * reports), with JSON paths and messages a person can act on. At most `limit` issues.
 */
export function schemaIssues(schema: TSchema, value: unknown, limit = 50): ValidationIssue[] {
  // Most values are valid: a compiled check answers those without walking TypeBox's error
  // iterator (which showed as ~2% of /defend's CPU).
  if (compiled(schema).Check(value)) return [];
  const seen = new Set<string>();
  const issues: ValidationIssue[] = [];
  for (const error of Value.Errors(schema, value)) {
    const path = pointerToPath(error.path);
    if (seen.has(path)) continue;
    seen.add(path);
    issues.push({ path, message: message(error) });
    if (issues.length >= limit) break;
  }
  return issues;
}

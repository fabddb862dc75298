/**
 * A small structural schema language for the resources the control plane reads.
 *
 * One declaration per kind gives three things that must agree: the checks `validate` runs on
 * untrusted input (YAML files, the Kubernetes API), the OpenAPI v3 schema of the CRDs under
 * `crds/` (`toOpenApi`), and the CEL rules with the exact messages Envoy Gateway uses, written
 * once as the CEL text that goes into the CRD and once as the TypeScript check we run.
 *
 * Keys match case-insensitively on input, the way Go's `encoding/json` does: Envoy Gateway's own
 * test bundles write `Name:`/`Kind:` in backendRefs, and `egctl` accepts them. Unknown keys are
 * dropped, as the API server's structural pruning does.
 */
import type { Problem } from '../../common/errors.js';

/** A CEL validation rule: the CEL text for the CRD, its message, and the same check in code. */
export interface CelRule {
  readonly rule: string;
  readonly message: string;
  /** True when `self` satisfies the rule. `self` has already passed the structural checks. */
  readonly check: (self: Record<string, unknown> | unknown[] | string) => boolean;
  /** Where the CRD puts the rule's message path, if not at the node itself. */
  readonly fieldPath?: string;
}

interface Common {
  readonly description?: string;
  readonly rules?: readonly CelRule[];
}

export type Schema =
  | (Common & {
      readonly type: 'string';
      readonly enum?: readonly string[];
      readonly pattern?: string;
      readonly minLength?: number;
      readonly maxLength?: number;
      readonly default?: string;
      readonly format?: string;
    })
  | (Common & {
      readonly type: 'integer';
      readonly minimum?: number;
      readonly maximum?: number;
      readonly enum?: readonly number[];
      readonly format?: 'int32' | 'int64';
      readonly default?: number;
    })
  | (Common & { readonly type: 'boolean'; readonly default?: boolean })
  | (Common & {
      readonly type: 'object';
      readonly properties?: Readonly<Record<string, Schema>>;
      readonly required?: readonly string[];
      /** Map values (`additionalProperties`). */
      readonly additional?: Schema;
      /** Any JSON is kept as it is (`x-kubernetes-preserve-unknown-fields`). */
      readonly preserveUnknown?: boolean;
    })
  | (Common & {
      readonly type: 'array';
      readonly items: Schema;
      readonly minItems?: number;
      readonly maxItems?: number;
    })
  /** A Kubernetes duration or int-or-string etc.: any scalar, kept. */
  | (Common & { readonly type: 'scalar' })
  /** Anything (`x-kubernetes-preserve-unknown-fields` without a type). */
  | (Common & { readonly type: 'any' });

/** The result of `validate`: the normalised value (keys spelled as the schema spells them, defaults applied) and every problem. */
export interface Validated {
  readonly value: unknown;
  readonly problems: Problem[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * Checks `input` against `schema`, collecting every problem (STYLE.md §4) with its field path
 * relative to `path`. Returns the value with keys normalised and defaults applied; values that
 * fail their own check are kept as they are so later messages can still name them.
 */
export function validate(
  schema: Schema,
  input: unknown,
  resource: string,
  path = '',
  options: ValidateOptions = {},
): Validated {
  const problems: Problem[] = [];
  const report: Report = (field, message) => problems.push({ resource, field, message });
  report.rules = options.celRules ?? true;
  const value = walk(schema, input, path, report);
  return { value, problems };
}

export interface ValidateOptions {
  /**
   * Run the CEL rules (default true). The API server enforces them at admission; Envoy
   * Gateway's own test harness and file provider load objects without admission, and leave it to
   * the translator to report what matters, so the conformance harness turns them off.
   */
  readonly celRules?: boolean;
}

type Report = ((field: string, message: string) => void) & { rules?: boolean };

// Compiled patterns are cached by source: validation runs for every resource on every snapshot.
const patterns = new Map<string, RegExp>();
function pattern(src: string): RegExp {
  let re = patterns.get(src);
  if (re === undefined) {
    re = new RegExp(src, 'u');
    patterns.set(src, re);
  }
  return re;
}

function walk(schema: Schema, input: unknown, path: string, report: Report): unknown {
  const here = path === '' ? '<root>' : path;
  switch (schema.type) {
    case 'any':
      return input;
    case 'scalar':
      if (typeof input !== 'string' && typeof input !== 'number' && typeof input !== 'boolean') {
        report(here, `must be a string or number, got ${describe(input)}`);
      }
      return input;
    case 'string': {
      if (typeof input !== 'string') {
        report(here, `must be a string, got ${describe(input)}`);
        return input;
      }
      if (schema.enum !== undefined && !schema.enum.includes(input)) {
        report(here, `Unsupported value: "${input}": supported values: ${schema.enum.map((e) => `"${e}"`).join(', ')}`);
      }
      if (schema.minLength !== undefined && input.length < schema.minLength) {
        report(here, `should be at least ${schema.minLength} chars long`);
      }
      if (schema.maxLength !== undefined && input.length > schema.maxLength) {
        report(here, `may not be more than ${schema.maxLength} bytes`);
      }
      if (schema.pattern !== undefined && !pattern(schema.pattern).test(input)) {
        report(here, `should match '${schema.pattern}'`);
      }
      runRules(schema, input, here, report);
      return input;
    }
    case 'integer': {
      if (typeof input !== 'number' || !Number.isInteger(input)) {
        report(here, `must be an integer, got ${describe(input)}`);
        return input;
      }
      if (schema.minimum !== undefined && input < schema.minimum) {
        report(here, `should be greater than or equal to ${schema.minimum}`);
      }
      if (schema.maximum !== undefined && input > schema.maximum) {
        report(here, `should be less than or equal to ${schema.maximum}`);
      }
      if (schema.enum !== undefined && !schema.enum.includes(input)) {
        report(here, `Unsupported value: ${input}: supported values: ${schema.enum.join(', ')}`);
      }
      return input;
    }
    case 'boolean':
      if (typeof input !== 'boolean') report(here, `must be a boolean, got ${describe(input)}`);
      return input;
    case 'array': {
      if (!Array.isArray(input)) {
        report(here, `must be a list, got ${describe(input)}`);
        return input;
      }
      if (schema.maxItems !== undefined && input.length > schema.maxItems) {
        report(here, `must have at most ${schema.maxItems} items`);
      }
      if (schema.minItems !== undefined && input.length < schema.minItems) {
        report(here, `should have at least ${schema.minItems} items`);
      }
      const out = input.map((item: unknown, i) => walk(schema.items, item, `${path}[${i}]`, report));
      runRules(schema, out, here, report);
      // Nothing pruned or defaulted below: the input itself (a provider keeps both, shared).
      return out.every((v, i) => v === input[i]) ? input : out;
    }
    case 'object': {
      if (!isRecord(input)) {
        report(here, `must be an object, got ${describe(input)}`);
        return input;
      }
      if (schema.preserveUnknown === true && schema.properties === undefined) return input;
      const out: Record<string, unknown> = {};
      /** Whether `out` differs from `input` (a key pruned, renamed or defaulted, a child copied). */
      let changed = false;
      const props = schema.properties;
      if (props !== undefined) {
        const lower = lowerIndex(props);
        for (const [key, v] of Object.entries(input)) {
          const name = key in props ? key : lower.get(key.toLowerCase());
          if (name === undefined) {
            if (schema.preserveUnknown === true) out[key] = v;
            else changed = true;
            continue; // pruned, as the API server does for structural schemas
          }
          // A YAML `key:` with no value is null; Kubernetes treats it as absent.
          if (v === null) {
            changed = true;
            continue;
          }
          const sub = props[name];
          if (sub === undefined) continue;
          const w = walk(sub, v, path === '' ? name : `${path}.${name}`, report);
          out[name] = w;
          if (name !== key || w !== v) changed = true;
        }
        for (const [name, sub] of Object.entries(props)) {
          if (!(name in out) && 'default' in sub && sub.default !== undefined) {
            out[name] = sub.default;
            changed = true;
          }
        }
      } else if (schema.additional !== undefined) {
        for (const [key, v] of Object.entries(input)) {
          const w = walk(schema.additional, v, `${path}[${key}]`, report);
          out[key] = w;
          if (w !== v) changed = true;
        }
      } else {
        Object.assign(out, input);
      }
      for (const name of schema.required ?? []) {
        if (!(name in out)) report(path === '' ? name : `${path}.${name}`, 'Required value');
      }
      runRules(schema, out, here, report);
      // Nothing pruned or defaulted below: the input itself, so a provider that keeps the objects
      // it read and the validated resources holds one copy, not two.
      return changed ? out : input;
    }
  }
}

const lowerIndexes = new WeakMap<object, Map<string, string>>();
function lowerIndex(props: Readonly<Record<string, Schema>>): Map<string, string> {
  let m = lowerIndexes.get(props);
  if (m === undefined) {
    m = new Map(Object.keys(props).map((k) => [k.toLowerCase(), k]));
    lowerIndexes.set(props, m);
  }
  return m;
}

function runRules(
  schema: Schema,
  value: Record<string, unknown> | unknown[] | string,
  path: string,
  report: Report,
): void {
  if (report.rules === false) return;
  for (const rule of schema.rules ?? []) {
    let passed: boolean;
    try {
      passed = rule.check(value);
    } catch {
      // A rule reading a field of the wrong type: the structural check already reported it.
      passed = true;
    }
    if (!passed) report(path, rule.message);
  }
}

/** The OpenAPI v3 (structural) schema of a declaration, for CRD manifests. */
export function toOpenApi(schema: Schema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (schema.description !== undefined) out['description'] = schema.description;
  switch (schema.type) {
    case 'any':
      out['x-kubernetes-preserve-unknown-fields'] = true;
      break;
    case 'scalar':
      out['x-kubernetes-int-or-string'] = true;
      break;
    case 'string':
      out['type'] = 'string';
      copy(out, schema, ['enum', 'pattern', 'minLength', 'maxLength', 'default', 'format']);
      break;
    case 'integer':
      out['type'] = 'integer';
      copy(out, schema, ['enum', 'minimum', 'maximum', 'format', 'default']);
      break;
    case 'boolean':
      out['type'] = 'boolean';
      copy(out, schema, ['default']);
      break;
    case 'array':
      out['type'] = 'array';
      out['items'] = toOpenApi(schema.items);
      copy(out, schema, ['minItems', 'maxItems']);
      break;
    case 'object':
      out['type'] = 'object';
      if (schema.properties !== undefined) {
        out['properties'] = Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, toOpenApi(v)]));
      }
      if (schema.additional !== undefined) out['additionalProperties'] = toOpenApi(schema.additional);
      if (schema.required !== undefined && schema.required.length > 0) out['required'] = [...schema.required];
      if (schema.preserveUnknown === true) out['x-kubernetes-preserve-unknown-fields'] = true;
      break;
  }
  if (schema.rules !== undefined && schema.rules.length > 0) {
    out['x-kubernetes-validations'] = schema.rules.map((r) => ({
      message: r.message,
      rule: r.rule,
      ...(r.fieldPath === undefined ? {} : { fieldPath: r.fieldPath }),
    }));
  }
  return out;
}

function copy(out: Record<string, unknown>, from: object, keys: readonly string[]): void {
  const src = from as Record<string, unknown>;
  for (const k of keys) if (src[k] !== undefined) out[k] = src[k];
}

// ---- small constructors, so declarations read like the Go API -------------------------------

export const str = (extra: Omit<Extract<Schema, { type: 'string' }>, 'type'> = {}): Schema => ({
  type: 'string',
  ...extra,
});
export const int = (extra: Omit<Extract<Schema, { type: 'integer' }>, 'type'> = {}): Schema => ({
  type: 'integer',
  ...extra,
});
export const bool = (extra: Omit<Extract<Schema, { type: 'boolean' }>, 'type'> = {}): Schema => ({
  type: 'boolean',
  ...extra,
});
export const arr = (items: Schema, extra: Omit<Extract<Schema, { type: 'array' }>, 'type' | 'items'> = {}): Schema => ({
  type: 'array',
  items,
  ...extra,
});
export const obj = (
  properties: Readonly<Record<string, Schema>>,
  extra: Omit<Extract<Schema, { type: 'object' }>, 'type' | 'properties'> = {},
): Schema => ({ type: 'object', properties, ...extra });
export const map = (values: Schema): Schema => ({ type: 'object', additional: values });
export const anyJson = (description?: string): Schema =>
  description === undefined ? { type: 'any' } : { type: 'any', description };
export const scalar = (description?: string): Schema =>
  description === undefined ? { type: 'scalar' } : { type: 'scalar', description };

/** Reads `self[key]` in a CEL check without `any`. */
export function field(self: unknown, key: string): unknown {
  return isRecord(self) ? self[key] : undefined;
}

/** CEL `has(self.x)`: present (YAML null counts as absent). */
export function has(self: unknown, key: string): boolean {
  return isRecord(self) && self[key] !== undefined && self[key] !== null;
}

/** The list at `self[key]`, or empty. */
export function list(self: unknown, key: string): unknown[] {
  const v = field(self, key);
  return Array.isArray(v) ? v : [];
}

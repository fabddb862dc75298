/**
 * Memoization across translations, for providers that translate again after every change.
 *
 * A snapshot built with `builderFrom` shares every unchanged resource object with the previous
 * one, so results can be kept per object: the backend/filter translation of each route
 * (`rules`) and the extension translation of each policy (`policies`). Both also depend on
 * everything a route or policy can reference (Services, EndpointSlices, Backends, Secrets,
 * ConfigMaps, ReferenceGrants, Namespaces, rejected objects) and on the Wasm resolutions; when
 * any of those changed (objects by identity, resolutions by `fingerprint()` when the lookup has
 * one, else by identity), the memo is dropped. Translation stays pure: the same
 * snapshot gives the same result with or without a cache.
 */
import type { ResourceKind } from '../api/types.js';
import type { ResourceSnapshot } from '../provider/snapshot.js';
import type { TranslationRecord } from './incremental.js';
import type { WasmModuleLookup } from './wasm-modules.js';

/** Kinds a route's or policy's translation reads besides the route or policy itself. */
const ENVIRONMENT: readonly ResourceKind[] = [
  'Service',
  'EndpointSlice',
  'Backend',
  'Secret',
  'ConfigMap',
  'ReferenceGrant',
  'Namespace',
];

export class TranslationCache {
  /** Per route object: its rule translations. */
  rules = new WeakMap<object, unknown>();
  /** Per policy object: its extension translation. */
  policies = new WeakMap<object, unknown>();
  /** How each translation with this cache ran: in full, or as route edits (incremental.ts). */
  readonly stats = { full: 0, incremental: 0 };
  /** The previous translation (incremental.ts starts from it). */
  last: TranslationRecord | undefined;
  private env: unknown[] = [];
  private wasm: WasmModuleLookup | string | undefined;
  private options = '';

  /** Drops the memo unless the environment is the same objects as last time. Returns whether it was kept. */
  prepare(snapshot: ResourceSnapshot, wasm: WasmModuleLookup, options: string): boolean {
    const env: unknown[] = [];
    for (const kind of ENVIRONMENT) {
      const m = snapshot.resources[kind];
      env.push(m.size);
      for (const [k, v] of m) env.push(k, v);
    }
    env.push(snapshot.rejected.length, ...snapshot.rejected.map((r) => r.value));
    // A lookup with a fingerprint is compared by content (a serve loop builds a new one per change).
    const wasmId = wasm.fingerprint?.() ?? wasm;
    const same =
      wasmId === this.wasm &&
      options === this.options &&
      env.length === this.env.length &&
      env.every((v, i) => v === this.env[i]);
    if (!same) {
      this.rules = new WeakMap();
      this.policies = new WeakMap();
      this.last = undefined;
    }
    this.env = env;
    this.wasm = wasmId;
    this.options = options;
    return same;
  }
}

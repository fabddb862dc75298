/**
 * Status shapes the translator produces, in the Gateway API / Envoy Gateway format, and the
 * helpers that build them. `lastTransitionTime` is left out: the translator reads no clock;
 * status writers stamp it when a condition actually changes.
 */
import type { Condition, ParentReference } from '../api/types.js';

/** A status's parentRef/ancestorRef: the same shape as a spec ParentReference. */
export type ParentRefStatus = ParentReference;

export interface RouteParentStatus {
  readonly parentRef: ParentRefStatus;
  readonly controllerName: string;
  readonly conditions: readonly Condition[];
}

export interface PolicyAncestorStatus {
  readonly ancestorRef: ParentRefStatus;
  readonly controllerName: string;
  readonly conditions: readonly Condition[];
}

export interface ListenerStatus {
  readonly name: string;
  readonly supportedKinds: readonly { readonly group: string; readonly kind: string }[];
  readonly attachedRoutes: number;
  readonly conditions: readonly Condition[];
}

/** The status of one resource, ready for a provider to write (`status` replaces the object's). */
export type ResourceStatus =
  | {
      readonly kind: 'GatewayClass';
      readonly name: string;
      readonly status: { readonly conditions: readonly Condition[] };
    }
  | {
      readonly kind: 'Gateway';
      readonly namespace: string;
      readonly name: string;
      readonly status: { readonly conditions: readonly Condition[]; readonly listeners: readonly ListenerStatus[] };
    }
  | {
      readonly kind: 'HTTPRoute' | 'GRPCRoute';
      readonly namespace: string;
      readonly name: string;
      readonly status: { readonly parents: readonly RouteParentStatus[] };
    }
  | {
      readonly kind: 'EnvoyExtensionPolicy';
      readonly namespace: string;
      readonly name: string;
      readonly status: { readonly ancestors: readonly PolicyAncestorStatus[] };
    }
  | {
      readonly kind: 'Backend' | 'EnvoyProxy';
      readonly namespace: string;
      readonly name: string;
      readonly status: { readonly conditions: readonly Condition[] };
    };

/**
 * Conditions already made, by message: a route's or policy's conditions are mostly the same few
 * (`Route is accepted`, …), so equal ones are one shared object (statuses are never mutated).
 * Looked up without building a key; bounded like an Interner.
 */
const byMessage = new Map<string, Condition[]>();
const MAX_MESSAGES = 4096;

export function condition(
  type: string,
  status: boolean,
  reason: string,
  message: string,
  observedGeneration?: number,
): Condition {
  const s = status ? 'True' : 'False';
  let list = byMessage.get(message);
  if (list !== undefined) {
    for (const c of list) {
      if (c.type === type && c.status === s && c.reason === reason && c.observedGeneration === observedGeneration)
        return c;
    }
  }
  const c: Condition =
    observedGeneration === undefined
      ? { type, status: s, reason, message }
      : { type, status: s, reason, message, observedGeneration };
  if (list === undefined) {
    if (byMessage.size >= MAX_MESSAGES) byMessage.clear();
    byMessage.set(message, (list = []));
  }
  // A few variants per message at most (generations); do not let one message grow without end.
  if (list.length < 16) list.push(c);
  return c;
}

/** Conditions keyed by type: setting one replaces the earlier condition of that type in place. */
export class ConditionSet {
  private readonly list: Condition[] = [];
  set(c: Condition): void {
    const i = this.list.findIndex((x) => x.type === c.type);
    if (i >= 0) this.list[i] = c;
    else this.list.push(c);
  }
  get(type: string): Condition | undefined {
    return this.list.find((c) => c.type === type);
  }
  has(type: string): boolean {
    return this.get(type) !== undefined;
  }
  toArray(): Condition[] {
    return [...this.list];
  }
}

/** Longest condition message Kubernetes accepts; longer ones are cut like Envoy Gateway does. */
export const MAX_MESSAGE_BYTES = 32768;

export function truncateMessage(message: string): string {
  if (Buffer.byteLength(message) <= MAX_MESSAGE_BYTES) return message;
  const suffix = ' (message truncated).';
  return (
    Buffer.from(message)
      .subarray(0, MAX_MESSAGE_BYTES - suffix.length)
      .toString() + suffix
  );
}

/** Byte-wise string order (Go's `<`), which Envoy Gateway's sorting uses; also far faster than localeCompare. */
export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

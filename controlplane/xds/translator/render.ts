/**
 * Rendering translated resources for people and golden files: each resource is encoded with
 * Envoy's protos, then decoded and written in Envoy's own JSON/YAML form (proto-json.ts).
 */
import { stringify } from 'yaml';
import type { ProtoObject } from '../../../proto/index.js';
import { toEnvoyJson } from './proto-json.js';
import { XDS_TYPES, encodeXds, messageName, type XdsResources, type XdsTypeUrl } from './translate.js';

/** Every resource of every type in Envoy's JSON form, decoded from the encoded bytes. */
export function renderXds(resources: XdsResources): Record<XdsTypeUrl, ProtoObject[]> {
  const encoded = encodeXds(resources);
  const out = {} as Record<XdsTypeUrl, ProtoObject[]>;
  for (const type of XDS_TYPES) out[type] = encoded[type].map((r) => toEnvoyJson(messageName(type), r.bytes));
  return out;
}

/** YAML text of a list of resources, stable for golden files. */
export function toYaml(value: unknown): string {
  return stringify(value, { lineWidth: 0, aliasDuplicateObjects: false, sortMapEntries: false });
}

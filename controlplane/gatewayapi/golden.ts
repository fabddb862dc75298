/**
 * The golden-file view of the Gateway API translator: files in, statuses + IR out, with Envoy
 * Gateway's deterministic Wasm mock. Shared by the golden tests and the fuzz test.
 */
import { loadFiles, snapshotFromObjects, yamlFiles } from '../provider/file/load.js';
import { wasmModuleRequests } from './envoy-extension-policy.js';
import { statusDocument } from './status-document.js';
import { translateGatewayApi } from './translate.js';
import { DeterministicWasmResolver, resolveWasmModules } from './wasm-modules.js';

/** Statuses + IR of one input, as the golden document. */
export async function translateInput(input: string, root: string): Promise<Record<string, unknown>> {
  const loaded = loadFiles(await yamlFiles([input]), root);
  if (loaded.problems.length > 0) throw new Error(loaded.problems.map((p) => `${p.resource}: ${p.message}`).join('\n'));
  const { snapshot } = snapshotFromObjects(loaded.objects);
  const wasm = await resolveWasmModules(wasmModuleRequests(snapshot), new DeterministicWasmResolver());
  const result = translateGatewayApi(snapshot, { wasmModules: wasm });
  return { ...statusDocument(snapshot, result), xdsIR: Object.fromEntries(result.ir) };
}

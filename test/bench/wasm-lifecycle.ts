/**
 * The one HTTP request lifecycle both Wasm benchmarks measure (`wasm-host.bench.ts` for the host,
 * `sdk.bench.ts` for SDK modules next to the hand-written WAT floor), so their figures compare
 * the same work: context create, request headers (10), response headers (2), on_log, on_done,
 * on_delete, through `HostEmulator`.
 */
import { HostEmulator } from '../../extensions/host/emulator.js';
import { HeaderMap, type HeaderPair } from '../../extensions/host/pairs.js';

export const REQUEST: HeaderPair[] = [
  [':authority', 'shop.example.com'],
  [':path', '/orders?id=7'],
  [':method', 'GET'],
  [':scheme', 'https'],
  ['user-agent', 'curl/8.5.0'],
  ['accept', '*/*'],
  ['x-user', 'alice'],
  ['x-request-id', '0c5e6a1e-3b0b-4cf0-9a2b-7f6d5a4c3b2a'],
  ['x-forwarded-proto', 'https'],
  ['content-length', '0'],
];
export const RESPONSE: HeaderPair[] = [
  [':status', '200'],
  ['content-type', 'application/json'],
];
const requestMap = new HeaderMap(REQUEST);
const responseMap = new HeaderMap(RESPONSE);

/** A started plugin and a `run` that performs one lifecycle through the emulator. */
export async function emulatedLifecycle(
  bytes: Uint8Array,
  pluginConfiguration = '',
): Promise<{ run: () => void; host: HostEmulator }> {
  // Throughput settings: no call trace, no inspection state for completed streams, and a small
  // in-memory log ring (Envoy writes logs out; the emulator keeps them only for assertions).
  const host = await HostEmulator.create(bytes, {
    recordCalls: false,
    keepCompletedStreams: 0,
    maxLogEntries: 1000,
    pluginConfiguration,
  });
  host.startPlugin();
  return {
    host,
    run: () => {
      const id = host.initializeHttpContext();
      // Envoy owns the header maps; the host is handed them (a fresh copy per request here).
      host.callOnRequestHeaders(id, requestMap.clone(), true);
      host.callOnResponseHeaders(id, responseMap.clone(), true);
      host.completeHttpContext(id);
    },
  };
}

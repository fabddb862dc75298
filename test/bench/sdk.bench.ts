/**
 * AssemblyScript SDK (issue 4): module sizes of filters built by `envext build`, and µs per
 * HTTP request lifecycle in the TS host emulator for SDK-built filters next to the hand-written
 * WAT floor of the host benchmark (`extensions/host/testdata/*.wat`), measured in the same run
 * through the same emulator and the same lifecycle: context create, request headers (10),
 * response headers (2), on_log, on_done, on_delete.
 *
 * Reference points from the issue: Rust SDK hello 83 KB after wasm-opt, solo-io AS 28.8 KB,
 * hand-written AS filter without SDK 1.2 KB; size target ≤ 8 KB; time target ≤ 2× the floor.
 */
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { WA, type WasmMemory } from '../../extensions/host/wasm-api.js';
import { compileWat } from '../../extensions/host/wat.js';
import { exampleEntries, exampleModule, sdkTestModule } from '../../extensions/sdk/build-cache.js';
import { measure, report, round } from './lib.js';
import { REQUEST, RESPONSE, emulatedLifecycle } from './wasm-lifecycle.js';

type Fn = (...a: number[]) => number;

/**
 * The same lifecycle under a ~30-line hand-rolled host (a Map for the headers, no access
 * windows or status translation): what the guest itself costs, without the emulator's
 * bookkeeping. Same host for the SDK module and the WAT module.
 */
async function bareHost(bytes: Uint8Array): Promise<() => void> {
  let headers = new Map<string, string>();
  // Assigned right after instantiation; imports run only later, from guest calls.
  // eslint-disable-next-line prefer-const
  let mem: WasmMemory | undefined;
  // eslint-disable-next-line prefer-const
  let malloc: Fn | undefined;
  const str = (p: number, n: number): string => Buffer.from(mem!.buffer, p, n).toString();
  const env: Record<string, Fn> = {
    proxy_log: (_l: number, p: number, n: number) => (str(p, n).length, 0),
    proxy_get_header_map_value: (_t: number, kp: number, ks: number, vpp: number, vsp: number) => {
      const v = headers.get(str(kp, ks));
      if (v === undefined) return 1;
      const n = Buffer.byteLength(v);
      const p = malloc!(n);
      Buffer.from(mem!.buffer).write(v, p);
      const dv = new DataView(mem!.buffer);
      dv.setUint32(vpp, p, true);
      dv.setUint32(vsp, n, true);
      return 0;
    },
    proxy_add_header_map_value: (_t: number, kp: number, ks: number, vp: number, vs: number) => {
      headers.set(str(kp, ks), str(vp, vs));
      return 0;
    },
    // plugin_root_id at root creation: not found.
    proxy_get_property: () => 1,
  };
  const module = await WA.compile(bytes);
  const imports: Record<string, Fn> = {};
  for (const i of WA.Module.imports(module)) imports[i.name] = env[i.name] ?? (() => 0);
  const inst = new WA.Instance(module, { env: imports });
  const e = inst.exports as Record<string, Fn>;
  mem = inst.exports['memory'] as WasmMemory;
  malloc = e['malloc'];
  e['_initialize']?.();
  e['proxy_on_context_create']!(1, 0);
  e['proxy_on_vm_start']?.(1, 0);
  e['proxy_on_configure']?.(1, 0);
  const [create, reqH, respH, done, del] = [
    e['proxy_on_context_create']!,
    e['proxy_on_request_headers']!,
    e['proxy_on_response_headers']!,
    e['proxy_on_done']!,
    e['proxy_on_delete']!,
  ];
  let id = 2;
  return () => {
    headers = new Map(REQUEST);
    create(id, 1);
    reqH(id, 10, 1);
    headers = new Map(RESPONSE);
    respH(id, 2, 1);
    done(id);
    del(id);
    id++;
  };
}

const size = (b: Uint8Array): { bytes: number; gzipBytes: number } => ({
  bytes: b.length,
  gzipBytes: gzipSync(b, { level: 9 }).length,
});

// Sizes (built through the same stamped cache as `npm run build`).
const minimal = await sdkTestModule('minimal');
const sizes: Record<string, { bytes: number; gzipBytes: number }> = {
  'minimal (add one response header)': size(minimal),
};
for (const e of exampleEntries()) sizes[`example ${e.name}`] = size(await exampleModule(e.name));

// Timings, interleaved in one process.
const wat = new URL('../../extensions/host/testdata/', import.meta.url);
const floorPass = await emulatedLifecycle(await compileWat(readFileSync(new URL('pass-through.wat', wat), 'utf8')));
const addHeaderWat = await compileWat(readFileSync(new URL('add-header.wat', wat), 'utf8'));
const floorAdd = await emulatedLifecycle(addHeaderWat);
const readAdd = await sdkTestModule('read-add');
sizes['read-add (SDK twin of add-header.wat)'] = size(readAdd);
const sdkReadAdd = await emulatedLifecycle(readAdd);
const sdkMinimal = await emulatedLifecycle(minimal);
const sdkHeaders = await emulatedLifecycle(
  await exampleModule('headers'),
  JSON.stringify({ request: { add: { 'x-via': 'envext' } }, response: { set: { server: 'envext' } } }),
);
const opts = { iterations: 100_000, warmup: 20_000, rounds: 7 };
const mFloorPass = measure('floor: hand-written WAT pass-through', floorPass.run, opts);
const mFloorAdd = measure('floor: hand-written WAT read one header + add two', floorAdd.run, opts);
const mReadAdd = measure('sdk: read-add, the same work as the WAT floor', sdkReadAdd.run, opts);
const mMinimal = measure('sdk: minimal filter (add one response header)', sdkMinimal.run, opts);
const mHeaders = measure('sdk: headers example (add request header, set response header)', sdkHeaders.run, opts);
const mBareWat = measure('bare host: WAT add-header', await bareHost(addHeaderWat), opts);
const mBareSdk = measure('bare host: SDK read-add', await bareHost(readAdd), opts);
const us = (ns: number): number => round(ns / 1000);

report('sdk', {
  sizeTargetBytes: 8192,
  sizes,
  lifecycle: 'context create, request headers (10), response headers (2), on_log, on_done, on_delete; HostEmulator',
  usPerLifecycle: {
    sdkReadAdd: us(mReadAdd.nsPerOp),
    sdkMinimal: us(mMinimal.nsPerOp),
    sdkHeadersExample: us(mHeaders.nsPerOp),
    floorWatReadAdd: us(mFloorAdd.nsPerOp),
    floorWatPassThrough: us(mFloorPass.nsPerOp),
  },
  // Same work (read x-user, log it, add two headers) as the hand-written WAT module.
  sdkReadAddOverFloor: round(mReadAdd.nsPerOp / mFloorAdd.nsPerOp, 2),
  // Guest cost alone: both modules under the same hand-rolled ~30-line host.
  bareHostUsPerLifecycle: { sdkReadAdd: us(mBareSdk.nsPerOp), watAddHeader: us(mBareWat.nsPerOp) },
  bareHostSdkOverWat: round(mBareSdk.nsPerOp / mBareWat.nsPerOp, 2),
  // The smallest SDK filter against the WAT module that makes no host call at all.
  sdkMinimalOverPassThroughFloor: round(mMinimal.nsPerOp / mFloorPass.nsPerOp, 2),
  timeTargetRatio: 2,
  guestMemoryBytes: { sdkMinimal: sdkMinimal.host.memoryBytes(), sdkHeadersExample: sdkHeaders.host.memoryBytes() },
  vmFailed: [floorPass, floorAdd, sdkReadAdd, sdkMinimal, sdkHeaders].some((x) => x.host.vmFailed()),
});

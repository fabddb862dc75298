/**
 * Host overhead per HTTP request lifecycle (issue 3): context create, request headers (10
 * headers), response headers, on_log, on_done, on_delete, through `HostEmulator` for two WAT
 * modules: pass-through (no host calls) and read-one-header + add-one (2 host calls + 1 malloc).
 *
 * Baselines in the same run, each doing the same guest calls:
 * - `bare`: the pass-through module instantiated with no host at all, its six exports called in
 *   a loop (the floor: V8 JS→Wasm call cost);
 * - `minimal`: the read+add module under a hand-rolled host of ~30 lines (a Map for the headers,
 *   no access windows, no status translation, no failure handling) — the "minimal hand-rolled Node
 *   host" the issue quotes at 0.2–0.5 µs.
 */
import { readFileSync } from 'node:fs';
import { WA, type WasmMemory } from '../../extensions/host/wasm-api.js';
import { compileWat } from '../../extensions/host/wat.js';
import { measure, report, round } from './lib.js';
import { REQUEST, RESPONSE, emulatedLifecycle } from './wasm-lifecycle.js';

const dir = new URL('../../extensions/host/testdata/', import.meta.url);
const passThrough = await compileWat(readFileSync(new URL('pass-through.wat', dir), 'utf8'));
const readAdd = await compileWat(readFileSync(new URL('add-header.wat', dir), 'utf8'));

type Fn = (...a: number[]) => number;

async function bare(): Promise<() => void> {
  const inst = new WA.Instance(await WA.compile(passThrough), {});
  const e = inst.exports as Record<string, Fn>;
  const [create, reqH, respH, log, done, del] = [
    e['proxy_on_context_create']!,
    e['proxy_on_request_headers']!,
    e['proxy_on_response_headers']!,
    e['proxy_on_log']!,
    e['proxy_on_done']!,
    e['proxy_on_delete']!,
  ];
  let id = 2;
  return () => {
    create(id, 1);
    reqH(id, 10, 1);
    respH(id, 2, 1);
    log(id);
    done(id);
    del(id);
    id++;
  };
}

async function minimal(): Promise<() => void> {
  // Lean on purpose: header maps built once (the entry the guest adds is removed again), cached
  // memory views, no access windows, no status translation, no failure handling.
  const requestHeaders = new Map<string, string>(REQUEST);
  const responseHeaders = new Map<string, string>(RESPONSE);
  let headers = requestHeaders;
  let added: string | undefined;
  // Assigned right after instantiation; the imports only run later, from guest calls.
  // eslint-disable-next-line prefer-const
  let mem: WasmMemory | undefined;
  // eslint-disable-next-line prefer-const
  let malloc: Fn | undefined;
  let buf = Buffer.alloc(0);
  let dv = new DataView(new ArrayBuffer(0));
  const view = (): void => {
    if (buf.length === 0) {
      buf = Buffer.from(mem!.buffer);
      dv = new DataView(mem!.buffer);
    }
  };
  const inst = new WA.Instance(await WA.compile(readAdd), {
    env: {
      proxy_log: () => 0,
      proxy_get_header_map_value: (_t: number, kp: number, ks: number, vpp: number, vsp: number) => {
        view();
        const v = headers.get(buf.toString('latin1', kp, kp + ks));
        if (v === undefined) return 1;
        const p = malloc!(v.length);
        view();
        buf.write(v, p, 'latin1');
        dv.setUint32(vpp, p, true);
        dv.setUint32(vsp, v.length, true);
        return 0;
      },
      proxy_add_header_map_value: (_t: number, kp: number, ks: number, vp: number, vs: number) => {
        view();
        added = buf.toString('latin1', kp, kp + ks);
        headers.set(added, buf.toString('latin1', vp, vp + vs));
        return 0;
      },
    },
  });
  const e = inst.exports as Record<string, Fn>;
  mem = inst.exports['memory'] as WasmMemory;
  malloc = e['malloc'];
  const [create, reqH, respH, done, del] = [
    e['proxy_on_context_create']!,
    e['proxy_on_request_headers']!,
    e['proxy_on_response_headers']!,
    e['proxy_on_done']!,
    e['proxy_on_delete']!,
  ];
  let id = 2;
  return () => {
    headers = requestHeaders;
    create(id, 1);
    reqH(id, 10, 1);
    requestHeaders.delete(added!);
    headers = responseHeaders;
    respH(id, 2, 1);
    responseHeaders.delete(added!);
    done(id);
    del(id);
    id++;
  };
}

const opts = { iterations: 100_000, warmup: 20_000, rounds: 7 };
const pt = await emulatedLifecycle(passThrough);
const ra = await emulatedLifecycle(readAdd);
const mPass = measure('host: pass-through', pt.run, opts);
const callsBefore = ra.host.hostCalls();
const mRead = measure('host: read one header + add one', ra.run, opts);
const callsPerLifecycle = (ra.host.hostCalls() - callsBefore) / (opts.warmup + opts.iterations * opts.rounds);
const mBare = measure('baseline: bare Wasm calls, no host (pass-through)', await bare(), opts);
const mMinimal = measure('baseline: minimal hand-rolled host (read + add)', await minimal(), opts);
const us = (ns: number): number => round(ns / 1000);

report('wasm-host', {
  lifecycle: 'context create, request headers (10), response headers (2), on_log, on_done, on_delete',
  passThrough: { usPerLifecycle: us(mPass.nsPerOp), lifecyclesPerSec: mPass.opsPerSec, targetUs: 1 },
  readAdd: {
    usPerLifecycle: us(mRead.nsPerOp),
    lifecyclesPerSec: mRead.opsPerSec,
    hostCallsPerLifecycle: callsPerLifecycle,
    hostCallsPerSec: Math.round(mRead.opsPerSec * callsPerLifecycle),
    targetUs: 2,
  },
  baselines: {
    bareWasmCallsUs: us(mBare.nsPerOp),
    minimalHostReadAddUs: us(mMinimal.nsPerOp),
  },
  vmFailed: pt.host.vmFailed() || ra.host.vmFailed(),
  guestMemoryBytes: ra.host.memoryBytes(),
});

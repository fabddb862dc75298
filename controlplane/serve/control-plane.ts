/**
 * `envext serve`: the running control plane.
 *
 *   source (file | kubernetes) ──snapshot──► resolve Wasm modules (module cache, may fetch)
 *      ► translateGatewayApi (pure) ──statuses──► status sink (Kubernetes status / printed)
 *      ► translateXds per Gateway (pure) ──► SnapshotCache[node.cluster = ns/gateway]
 *      ► ADS server (:18000) ──► Envoy;  module server (:18002) ──► Envoy's Wasm fetches
 *   admin HTTP (:8081): /healthz, /readyz, /metrics (Prometheus), /debug/clients
 *
 * Snapshots are processed one at a time, latest wins (Envoy Gateway's coalescing): a burst of
 * changes during a translation makes exactly one more translation. A translation that throws
 * publishes nothing, so Envoy keeps the last good config (as Envoy Gateway). Translation keeps a
 * TranslationCache, so a one-route change re-translates that route only.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { errorMessage } from '../../common/errors.js';
import { rootLogger, type Logger } from '../../common/log.js';
import type { ProtoObject } from '../../proto/index.js';
import { wasmModuleRequests } from '../gatewayapi/envoy-extension-policy.js';
import type { ResourceStatus } from '../gatewayapi/status.js';
import { TranslationCache, translateGatewayApi, type TranslateResult } from '../gatewayapi/translate.js';
import { resolveWasmModules } from '../gatewayapi/wasm-modules.js';
import type { ResourceSnapshot } from '../provider/snapshot.js';
import type { WasmModuleCache } from '../wasm-cache/module-cache.js';
import type { ModuleServer } from '../wasm-cache/server.js';
import { AdsServer, type XdsTlsOptions } from '../xds/server/ads-server.js';
import { SnapshotCache } from '../xds/server/cache.js';
import { checkReferences } from '../xds/server/snapshot.js';
import { loadXdsProtos, translateXds, XdsTranslationMemo } from '../xds/translator/translate.js';
import { withProxylessGrpc } from './proxyless-grpc.js';

/** Where resources come from: the file source or the Kubernetes provider. */
export interface ResourceSource {
  start(): Promise<ResourceSnapshot>;
  subscribe(fn: (s: ResourceSnapshot) => void): () => void;
  stop(): Promise<void>;
}

/** What happens to statuses: written to Kubernetes, or printed/logged in file mode. */
export type StatusSink = (statuses: readonly ResourceStatus[], result: TranslateResult) => void | Promise<void>;

export interface ControlPlaneOptions {
  readonly source: ResourceSource;
  readonly wasmCache: WasmModuleCache;
  readonly moduleServer: ModuleServer;
  readonly xdsAddress: string;
  readonly xdsTls?: XdsTlsOptions;
  /** `host:port` of the admin HTTP server (health, readiness, metrics). */
  readonly adminAddress: string;
  readonly controllerName?: string;
  readonly controllerNamespace?: string;
  readonly statusSink?: StatusSink;
  /** Add api_listeners and round_robin for proxyless gRPC clients (grpc-js-xds). */
  readonly proxylessGrpc?: boolean;
  /** Called once every port is bound, before the first translation (e.g. to set the module URL). */
  readonly onListening?: (ports: Ports) => void;
  /** Purge interval of the module cache (default 1 h). */
  readonly purgeIntervalMs?: number;
  readonly log?: Logger;
}

export interface Ports {
  readonly xds: number;
  readonly wasm: number;
  readonly admin: number;
}

export class ControlPlane {
  readonly cache = new SnapshotCache();
  readonly registry = new Registry();
  readonly ads: AdsServer;
  private readonly log: Logger;
  private readonly translations: Counter<'result'>;
  private readonly translationPaths: Counter<'path'>;
  private readonly duration: Histogram;
  private admin: Server | undefined;
  private pending: ResourceSnapshot | undefined;
  private working = false;
  private ready = false;
  private purgeTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private idleWaiters: (() => void)[] = [];
  /**
   * Part 1's memo across translations: routes and policies whose objects did not change (the
   * providers keep their identity) are not translated again, so a one-route change costs little.
   */
  private readonly translationCache = new TranslationCache();
  /** The xDS stage's memo across translations (filter chains, name orders). */
  private readonly xdsMemo = new XdsTranslationMemo();
  /** The last successful translation. */
  last: TranslateResult | undefined;

  constructor(private readonly options: ControlPlaneOptions) {
    this.log = options.log ?? rootLogger.child({ component: 'serve' });
    collectDefaultMetrics({ register: this.registry, prefix: 'envext_' });
    this.ads = new AdsServer({ cache: this.cache, registry: this.registry, log: this.log.child({ component: 'xds' }) });
    this.translations = new Counter({
      name: 'envext_translations_total',
      help: 'translations of a resource snapshot, by result (ok or error)',
      labelNames: ['result'],
      registers: [this.registry],
    });
    this.translationPaths = new Counter({
      name: 'envext_translation_paths_total',
      help: 'Gateway API translations by path: incremental (route or policy edits only) or full',
      labelNames: ['path'],
      registers: [this.registry],
    });
    this.duration = new Histogram({
      name: 'envext_translation_duration_seconds',
      help: 'time from a new resource snapshot to published xDS snapshots (module resolution included)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
  }

  /** Starts every server, translates the first snapshot, then follows changes. */
  async start(): Promise<Ports> {
    loadXdsProtos();
    const admin = await this.startAdmin();
    const xds = await this.ads.listen(this.options.xdsAddress, this.options.xdsTls);
    const wasm = await this.options.moduleServer.listen();
    this.options.onListening?.({ xds, wasm, admin });
    this.unsubscribe = this.options.source.subscribe((s) => this.enqueue(s));
    const first = await this.options.source.start();
    this.enqueue(first);
    await this.idle();
    this.ready = this.last !== undefined;
    this.purgeTimer = setInterval(() => {
      this.options.wasmCache
        .purge()
        .catch((e: unknown) => this.log.warn('module cache purge failed', { error: errorMessage(e) }));
    }, this.options.purgeIntervalMs ?? 3_600_000);
    this.purgeTimer.unref();
    return { xds, wasm, admin };
  }

  /** Graceful stop: no new snapshots, ADS streams closed, servers closed. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    if (this.purgeTimer !== undefined) clearInterval(this.purgeTimer);
    await this.options.source.stop();
    await this.idle();
    await this.ads.close(2_000);
    await this.options.moduleServer.close();
    const admin = this.admin;
    this.admin = undefined;
    if (admin !== undefined) {
      admin.closeAllConnections();
      await new Promise<void>((r) => admin.close(() => r()));
    }
  }

  /** Resolves when no translation is running or queued. */
  idle(): Promise<void> {
    if (!this.working && this.pending === undefined) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private enqueue(s: ResourceSnapshot): void {
    this.pending = s;
    if (!this.working) void this.drain();
  }

  private async drain(): Promise<void> {
    this.working = true;
    while (this.pending !== undefined) {
      const s = this.pending;
      this.pending = undefined;
      await this.process(s);
    }
    this.working = false;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private async process(snapshot: ResourceSnapshot): Promise<void> {
    const started = performance.now();
    try {
      const requests = wasmModuleRequests(snapshot);
      const wasmModules = await resolveWasmModules(requests, this.options.wasmCache);
      const before = { ...this.translationCache.stats };
      const result = translateGatewayApi(snapshot, {
        wasmModules,
        cache: this.translationCache,
        ...(this.options.controllerName === undefined ? {} : { controllerName: this.options.controllerName }),
        ...(this.options.controllerNamespace === undefined
          ? {}
          : { controllerNamespace: this.options.controllerNamespace }),
      });
      const published: string[] = [];
      for (const [group, ir] of result.ir) {
        const xds = translateXds(ir, this.xdsMemo);
        let input = new Map<string, ProtoObject[]>(
          Object.entries(xds).map(([t, list]) => [t, list.map((r) => r.resource)]),
        );
        if (this.options.proxylessGrpc === true) input = withProxylessGrpc(input);
        const { version, changed } = this.cache.set(group, input);
        published.push(group);
        if (changed) {
          const problems = checkReferences(this.cache.get(group)!);
          for (const p of problems) this.log.warn('xDS reference problem', { group, problem: p });
          this.log.info('xDS snapshot published', {
            group,
            version,
            routes: ir.http.reduce((n, l) => n + l.routes.length, 0),
          });
        }
      }
      for (const group of this.cache.groupNames()) {
        if (!result.ir.has(group)) {
          this.cache.delete(group);
          this.log.info('xDS snapshot removed (Gateway gone)', { group });
        }
      }
      this.last = result;
      this.ready = true;
      this.translations.inc({ result: 'ok' });
      const stats = this.translationCache.stats;
      if (stats.incremental > before.incremental) this.translationPaths.inc({ path: 'incremental' });
      if (stats.full > before.full) this.translationPaths.inc({ path: 'full' });
      await this.options.statusSink?.(result.statuses, result);
    } catch (e: unknown) {
      this.translations.inc({ result: 'error' });
      this.log.error('translation failed; Envoy keeps the last published config', {
        error: errorMessage(e),
        revision: snapshot.revision,
      });
    } finally {
      this.duration.observe((performance.now() - started) / 1000);
    }
  }

  private async startAdmin(): Promise<number> {
    const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(this.options.adminAddress);
    const host = m?.[1] ?? '127.0.0.1';
    const port = Number(m?.[2] ?? 8081);
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else if (path === '/readyz') {
        res
          .writeHead(this.ready ? 200 : 503, { 'content-type': 'text/plain' })
          .end(this.ready ? 'ready\n' : 'not ready: no translation yet\n');
      } else if (path === '/metrics') {
        this.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
          (e: unknown) => res.writeHead(500).end(errorMessage(e)),
        );
      } else if (path === '/debug/clients') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify(
            {
              groups: this.cache.groupNames().map((g) => ({ group: g, version: this.cache.get(g)?.version })),
              clients: this.ads.clients(),
            },
            null,
            2,
          ) + '\n',
        );
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, resolve);
    });
    this.admin = server;
    return (server.address() as AddressInfo).port;
  }
}

/**
 * The Kubernetes provider: client-node informers for every watched kind (cluster-wide or per
 * namespace), merged into one ResourceSnapshot per change burst (Envoy Gateway rebuilds the
 * whole tree on every event too; reference §1.3), debounced so a burst of events makes one
 * snapshot (envoyproxy/envoy#32266 is what happens otherwise).
 *
 * Only GatewayClasses whose `spec.controllerName` is ours are kept, and only Gateways of those
 * classes: we never translate, or write status on, another controller's resources.
 *
 * An informer stops on any error other than 410/timeout (client-node's ListWatch); we restart
 * it after a backoff (1 s doubling to 30 s), as client-node's own example does.
 *
 * Every snapshot holds every resource, but only objects the informers replaced are validated
 * again: the validated resource is kept per informer object (client-node's cache keeps an
 * object until an event or a relist brings another resourceVersion), so an unchanged resource
 * is the same object in every snapshot and the translator's TranslationCache (keyed by object
 * identity) reuses its translation.
 */
import * as k8s from '@kubernetes/client-node';
import { rootLogger, type Logger } from '../../../common/log.js';
import { errorMessage } from '../../../common/errors.js';
import { parseResource, type ParsedResource } from '../../api/validate.js';
import { SnapshotBuilder, type ResourceSnapshot } from '../snapshot.js';
import { KINDS, collectionPath, listFunction, toPlain, type KindInfo } from './kinds.js';

/** Envoy Gateway's default controller name; policies move between the two unchanged. */
export const DEFAULT_CONTROLLER_NAME = 'gateway.envoyproxy.io/gatewayclass-controller';

export interface KubernetesProviderOptions {
  readonly kubeConfig: k8s.KubeConfig;
  readonly controllerName?: string;
  /** Namespaces to watch; empty or absent = every namespace. */
  readonly namespaces?: readonly string[];
  /** Quiet period before a snapshot is built after an event (default 100 ms). */
  readonly debounceMs?: number;
  /** First restart delay of a failed informer (default 1 s; doubles up to 30 s). */
  readonly restartDelayMs?: number;
  readonly log?: Logger;
}

interface Watched {
  readonly info: KindInfo;
  readonly namespace: string | undefined;
  readonly informer: k8s.Informer<k8s.KubernetesObject> & k8s.ObjectCache<k8s.KubernetesObject>;
  restarts: number;
  timer: NodeJS.Timeout | undefined;
}

export type SnapshotHandler = (snapshot: ResourceSnapshot) => void;

export class KubernetesProvider {
  readonly controllerName: string;
  private readonly log: Logger;
  private readonly watched: Watched[] = [];
  private readonly handlers = new Set<SnapshotHandler>();
  private debounce: NodeJS.Timeout | undefined;
  private revision = 0;
  private latest: ResourceSnapshot | undefined;
  private started = false;
  private stopped = false;
  /**
   * The validated resource of each informer object (see the module comment), and for a rejected
   * one the plain object it was rejected as: the snapshot's `rejected[].value` then stays the same
   * object too (the TranslationCache compares rejected values by identity).
   */
  private validated = new WeakMap<k8s.KubernetesObject, { parsed: ParsedResource; plain?: unknown }>();
  /** Informer restarts after errors (for metrics and tests). */
  restarts = 0;
  /** Objects validated since start (the rest were reused), for tests and metrics. */
  validations = 0;

  constructor(private readonly options: KubernetesProviderOptions) {
    this.controllerName = options.controllerName ?? DEFAULT_CONTROLLER_NAME;
    this.log = options.log ?? rootLogger.child({ component: 'provider-kubernetes' });
    const namespaces =
      options.namespaces !== undefined && options.namespaces.length > 0 ? options.namespaces : [undefined];
    for (const info of KINDS) {
      for (const ns of info.namespaced ? namespaces : [undefined]) {
        const informer = k8s.makeInformer(
          options.kubeConfig,
          collectionPath(info, ns),
          listFunction(options.kubeConfig, info, ns),
        );
        const w: Watched = { info, namespace: ns, informer, restarts: 0, timer: undefined };
        const changed = (): void => this.schedule();
        informer.on('add', changed);
        informer.on('update', changed);
        informer.on('delete', changed);
        informer.on('error', (e: unknown) => this.onError(w, e));
        this.watched.push(w);
      }
    }
  }

  /** Starts every informer; resolves after the initial list of each (the first snapshot is then published). */
  async start(): Promise<ResourceSnapshot> {
    this.started = true;
    await Promise.all(this.watched.map((w) => w.informer.start()));
    this.log.info('informers synced', {
      kinds: KINDS.length,
      informers: this.watched.length,
      controller: this.controllerName,
    });
    return this.publish();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.debounce !== undefined) clearTimeout(this.debounce);
    for (const w of this.watched) {
      if (w.timer !== undefined) clearTimeout(w.timer);
      await w.informer.stop();
    }
  }

  /** Calls `fn` with every new snapshot; returns the unsubscribe function. */
  subscribe(fn: SnapshotHandler): () => void {
    this.handlers.add(fn);
    return () => this.handlers.delete(fn);
  }

  current(): ResourceSnapshot | undefined {
    return this.latest;
  }

  private schedule(): void {
    if (!this.started || this.stopped) return;
    if (this.debounce !== undefined) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.publish();
    }, this.options.debounceMs ?? 100);
  }

  private onError(w: Watched, e: unknown): void {
    if (this.stopped) return;
    const delay = Math.min((this.options.restartDelayMs ?? 1000) * 2 ** w.restarts, 30_000);
    w.restarts++;
    this.restarts++;
    this.log.warn('informer stopped on an error; restarting', {
      kind: w.info.kind,
      namespace: w.namespace ?? '(all)',
      error: errorMessage(e),
      retryInMs: delay,
    });
    w.timer = setTimeout(() => {
      w.timer = undefined;
      if (this.stopped) return;
      w.informer.start().then(
        () => {
          w.restarts = 0;
          this.schedule();
        },
        // A failed start emits 'error' again, which schedules the next attempt.
        () => undefined,
      );
    }, delay);
  }

  /** Builds and publishes a snapshot from the informer caches. */
  private publish(): ResourceSnapshot {
    const builder = new SnapshotBuilder();
    const managedClasses = new Set<string>();
    for (const w of this.watched) {
      if (w.info.kind !== 'GatewayClass') continue;
      for (const gc of w.informer.list()) {
        if (specField(gc, 'controllerName') === this.controllerName) managedClasses.add(gc.metadata?.name ?? '');
      }
    }
    for (const w of this.watched) {
      const kind = w.info.kind;
      for (const o of w.informer.list()) {
        const name = o.metadata?.name ?? '';
        if (kind === 'GatewayClass' && !managedClasses.has(name)) continue;
        if (kind === 'Gateway' && !managedClasses.has(String(specField(o, 'gatewayClassName')))) continue;
        const namespace = o.metadata?.namespace;
        const source = `kubernetes ${kind} ${namespace === undefined ? name : `${namespace}/${name}`}`;
        let known = this.validated.get(o);
        if (known === undefined) {
          const plain = toPlain(w.info, o);
          const parsed = parseResource(plain, source, kind);
          known = parsed.ok ? { parsed } : { parsed, plain };
          this.validations++;
          this.validated.set(o, known);
        }
        // A rejected object goes through the builder again, which records it (they are rare).
        if (known.parsed.ok) builder.put(known.parsed.kind, known.parsed.resource, source);
        else builder.add(known.plain, source, kind);
      }
    }
    const snapshot = builder.build(++this.revision);
    this.latest = snapshot;
    for (const fn of this.handlers) {
      try {
        fn(snapshot);
      } catch (e: unknown) {
        this.log.error('snapshot subscriber failed', { error: errorMessage(e) });
      }
    }
    return snapshot;
  }
}

/** `spec[field]` of an informer object (raw JSON or a typed client-node object). */
function specField(o: k8s.KubernetesObject, field: string): unknown {
  const spec = (o as { spec?: unknown }).spec;
  return typeof spec === 'object' && spec !== null ? (spec as Record<string, unknown>)[field] : undefined;
}

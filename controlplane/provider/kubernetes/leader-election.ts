/**
 * Leader election with a `coordination.k8s.io/v1` Lease, the algorithm of client-go's
 * `leaderelection` package (which controller-runtime, and so Envoy Gateway, uses):
 *
 * - try every `retryPeriod`: read the Lease; create it if missing; if another holder's record
 *   has not changed for `leaseDuration` (measured on *our* clock from when we first saw that
 *   record, so clock skew between replicas does not matter), take it over; a PUT with the read
 *   resourceVersion makes the take-over atomic (409 = someone else won);
 * - while leading, renew `renewTime` every `retryPeriod`; if renewing keeps failing for
 *   `renewDeadline`, stop leading;
 * - on stop, release the Lease (empty holder) so a successor does not wait for expiry.
 *
 * Defaults match controller-runtime: 15 s lease, 10 s renew deadline, 2 s retry period.
 */
import { hostname } from 'node:os';
import * as k8s from '@kubernetes/client-node';
import { rootLogger, type Logger } from '../../../common/log.js';
import { errorMessage } from '../../../common/errors.js';

export interface LeaderElectionOptions {
  readonly kubeConfig: k8s.KubeConfig;
  readonly namespace: string;
  /** Lease name (default `envext-serve`). */
  readonly name?: string;
  /** This replica's identity (default `<hostname>_<random>`). */
  readonly identity?: string;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
  readonly onStartedLeading?: () => void;
  readonly onStoppedLeading?: () => void;
  readonly log?: Logger;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: LeaseSpec;
}

const GROUP = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' };

/** RFC 3339 with microseconds, as `MicroTime` is written. */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  readonly identity: string;
  private readonly api: k8s.CustomObjectsApi;
  private readonly log: Logger;
  private readonly name: string;
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private leading = false;
  private stopped = true;
  private timer: NodeJS.Timeout | undefined;
  private observed: { record: string; at: number } | undefined;
  private lastRenew = 0;
  private loop: Promise<void> = Promise.resolve();

  constructor(private readonly options: LeaderElectionOptions) {
    this.api = options.kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    this.log = options.log ?? rootLogger.child({ component: 'leader-election' });
    this.name = options.name ?? 'envext-serve';
    this.identity = options.identity ?? `${hostname()}_${Math.random().toString(36).slice(2, 10)}`;
    this.leaseMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryMs = options.retryPeriodMs ?? 2_000;
  }

  isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.tick();
  }

  /** Stops trying; releases the Lease when leading. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.loop;
    if (this.leading) {
      try {
        const lease = await this.read();
        if (lease?.spec.holderIdentity === this.identity) {
          const now = microTime(new Date());
          await this.replace({
            ...lease,
            spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now },
          });
        }
      } catch (e: unknown) {
        this.log.warn('could not release the lease', { error: errorMessage(e) });
      }
      this.setLeading(false);
    }
  }

  private tick(): void {
    if (this.stopped) return;
    this.loop = this.attempt().finally(() => {
      if (!this.stopped) {
        this.timer = setTimeout(() => this.tick(), this.retryMs);
        this.timer.unref();
      }
    });
  }

  private async attempt(): Promise<void> {
    try {
      const ok = await this.tryAcquireOrRenew();
      if (ok) {
        this.lastRenew = Date.now();
        this.setLeading(true);
      } else if (this.leading) {
        this.setLeading(false);
      }
    } catch (e: unknown) {
      this.log.debug('lease update failed', { error: errorMessage(e) });
      if (this.leading && Date.now() - this.lastRenew > this.renewDeadlineMs) {
        this.log.warn('could not renew the lease before the deadline; no longer leading', { lease: this.name });
        this.setLeading(false);
      }
    }
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    this.log.info(leading ? 'became leader' : 'stopped leading', {
      identity: this.identity,
      lease: `${this.options.namespace}/${this.name}`,
    });
    if (leading) this.options.onStartedLeading?.();
    else this.options.onStoppedLeading?.();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    const ours: LeaseSpec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.max(1, Math.round(this.leaseMs / 1000)),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    const lease = await this.read();
    if (lease === undefined) {
      try {
        await this.api.createNamespacedCustomObject({
          ...GROUP,
          namespace: this.options.namespace,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name: this.name, namespace: this.options.namespace },
            spec: ours,
          },
        });
        return true;
      } catch (e: unknown) {
        if (e instanceof k8s.ApiException && e.code === 409) return false; // another replica created it first
        throw e;
      }
    }
    const spec = lease.spec;
    const record = JSON.stringify(spec);
    if (this.observed?.record !== record) this.observed = { record, at: Date.now() };
    const holder = spec.holderIdentity ?? '';
    const expired = Date.now() - this.observed.at > (spec.leaseDurationSeconds ?? 15) * 1000;
    if (holder !== '' && holder !== this.identity && !expired) return false;
    const next: LeaseSpec =
      holder === this.identity
        ? { ...spec, renewTime: microTime(now), leaseDurationSeconds: ours.leaseDurationSeconds ?? 15 }
        : { ...ours, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 };
    try {
      await this.replace({ ...lease, spec: next });
    } catch (e: unknown) {
      if (e instanceof k8s.ApiException && e.code === 409) return false;
      throw e;
    }
    return true;
  }

  private async read(): Promise<Lease | undefined> {
    try {
      return (await this.api.getNamespacedCustomObject({
        ...GROUP,
        namespace: this.options.namespace,
        name: this.name,
      })) as Lease;
    } catch (e: unknown) {
      if (e instanceof k8s.ApiException && e.code === 404) return undefined;
      throw e;
    }
  }

  private async replace(lease: Lease): Promise<void> {
    await this.api.replaceNamespacedCustomObject({
      ...GROUP,
      namespace: this.options.namespace,
      name: this.name,
      body: lease,
    });
  }
}

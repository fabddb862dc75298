/**
 * `grpc.health.v1.Health` on the ext_proc server itself, so Envoy's gRPC health checker and
 * Kubernetes gRPC probes see exactly what Envoy's ext_proc streams would: the server as a whole
 * (service "") and `envoy.service.ext_proc.v3.ExternalProcessor`. Both go NOT_SERVING when the
 * server starts draining.
 */
import * as grpc from '@grpc/grpc-js';
import { serviceDefinition } from '../../proto/index.js';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

export const HEALTH_SERVICE = 'grpc.health.v1.Health';

export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Set<{
    service: string;
    call: grpc.ServerWritableStream<{ service?: string }, object>;
  }>();

  constructor(services: readonly string[]) {
    for (const s of ['', ...services]) this.statuses.set(s, 'SERVING');
  }

  /** Sets the status of every known service. */
  setAll(status: ServingStatus): void {
    for (const s of this.statuses.keys()) this.statuses.set(s, status);
    for (const w of this.watchers) w.call.write({ status: this.statuses.get(w.service) ?? 'SERVICE_UNKNOWN' });
  }

  status(service = ''): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** Ends every Watch call (at shutdown). */
  closeWatchers(): void {
    for (const w of this.watchers) w.call.end();
    this.watchers.clear();
  }

  addTo(server: grpc.Server): void {
    server.addService(serviceDefinition(HEALTH_SERVICE), {
      check: (call: grpc.ServerUnaryCall<{ service?: string }, object>, cb: grpc.sendUnaryData<object>) => {
        const service = call.request.service ?? '';
        const status = this.statuses.get(service);
        if (status === undefined) cb({ code: grpc.status.NOT_FOUND, details: `unknown service "${service}"` });
        else cb(null, { status });
      },
      watch: (call: grpc.ServerWritableStream<{ service?: string }, object>) => {
        const service = call.request.service ?? '';
        const w = { service, call };
        this.watchers.add(w);
        call.write({ status: this.statuses.get(service) ?? 'SERVICE_UNKNOWN' });
        call.on('cancelled', () => this.watchers.delete(w));
      },
    });
  }
}

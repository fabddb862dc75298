/**
 * GatewayClasses, EnvoyProxy parameters, Gateways and their listeners → IR listeners and
 * Gateway/GatewayClass statuses. Ported in spirit from Envoy Gateway
 * `internal/gatewayapi/listener.go` and `gatewayclass.go`; only HTTP and HTTPS listeners are
 * translated today, other protocols get a clear `UnsupportedProtocol` condition.
 */
import type { EnvoyProxy, Gateway, GatewayClass, Listener } from '../api/types.js';
import type { FilterPosition, TlsCertificate } from '../ir/types.js';
import { getResource, listResources } from '../provider/snapshot.js';
import { referenceAllowed, secretValue } from './backend-refs.js';
import type { GatewayContext, ListenerContext, TranslationContext } from './context.js';
import { ConditionSet, condition } from './status.js';

const GW_GROUP = 'gateway.networking.k8s.io';

/** Finds a cycle in filterOrder (Envoy Gateway rejects the EnvoyProxy), as `a -> b`. */
export function filterOrderCycle(order: readonly FilterPosition[]): string | undefined {
  // Edge x → y means "x runs before y".
  const edges = new Map<string, Set<string>>();
  const add = (a: string, b: string): void => {
    let s = edges.get(a);
    if (s === undefined) edges.set(a, (s = new Set()));
    s.add(b);
  };
  for (const p of order) {
    if (p.before !== undefined) add(p.name, p.before);
    if (p.after !== undefined) add(p.after, p.name);
  }
  const state = new Map<string, 1 | 2>();
  let found: string | undefined;
  const visit = (n: string): boolean => {
    state.set(n, 1);
    for (const m of edges.get(n) ?? []) {
      const st = state.get(m);
      if (st === 1) {
        found = `${n} -> ${m}`;
        return true;
      }
      if (st === undefined && visit(m)) return true;
    }
    state.set(n, 2);
    return false;
  };
  for (const n of [...edges.keys()].sort()) {
    if (state.get(n) === undefined && visit(n)) return found;
  }
  return undefined;
}

function envoyProxyProblem(ep: EnvoyProxy): string | undefined {
  const cycle = filterOrderCycle(ep.spec.filterOrder ?? []);
  return cycle === undefined ? undefined : `there is a cycle in the filter order: ${cycle}`;
}

/** Our GatewayClasses (by name) with their EnvoyProxy, and their conditions. */
function translateClasses(
  ctx: TranslationContext,
): Map<string, { cls: GatewayClass; envoyProxy?: EnvoyProxy; ok: boolean }> {
  const out = new Map<string, { cls: GatewayClass; envoyProxy?: EnvoyProxy; ok: boolean }>();
  for (const cls of listResources(ctx.snapshot, 'GatewayClass')) {
    if (cls.spec.controllerName !== ctx.deps.controllerName) continue;
    const gen = cls.metadata.generation;
    const ref = cls.spec.parametersRef;
    let envoyProxy: EnvoyProxy | undefined;
    let problem: string | undefined;
    if (ref !== undefined) {
      if (ref.group !== 'gateway.envoyproxy.io' || ref.kind !== 'EnvoyProxy') {
        problem = `Unsupported parametersRef ${ref.group}/${ref.kind}: only gateway.envoyproxy.io/EnvoyProxy is supported`;
      } else if (ref.namespace === undefined) {
        problem = 'parametersRef.namespace must be set for an EnvoyProxy';
      } else {
        envoyProxy = getResource(ctx.snapshot, 'EnvoyProxy', ref.namespace, ref.name);
        if (envoyProxy === undefined)
          problem = `Failed to resolve parametersRef: EnvoyProxy ${ref.namespace}/${ref.name} not found`;
        else problem = envoyProxyProblem(envoyProxy);
      }
    }
    ctx.classConditions.set(cls.metadata.name, [
      problem === undefined
        ? condition('Accepted', true, 'Accepted', 'Valid GatewayClass', gen)
        : condition('Accepted', false, 'InvalidParameters', `Invalid GatewayClass: ${problem}`, gen),
    ]);
    out.set(
      cls.metadata.name,
      envoyProxy === undefined ? { cls, ok: problem === undefined } : { cls, envoyProxy, ok: problem === undefined },
    );
  }
  return out;
}

/** Envoy Gateway maps privileged ports to unprivileged ones for the Envoy process. */
export function containerPort(port: number): number {
  return port < 1024 ? port + 10000 : port;
}

function supportedKinds(listener: Listener): { kinds: { group: string; kind: string }[]; invalid: string[] } {
  const defaults = [
    { group: GW_GROUP, kind: 'HTTPRoute' },
    { group: GW_GROUP, kind: 'GRPCRoute' },
  ];
  const given = listener.allowedRoutes?.kinds;
  if (given === undefined) return { kinds: defaults, invalid: [] };
  const kinds: { group: string; kind: string }[] = [];
  const invalid: string[] = [];
  for (const k of given) {
    const group = k.group ?? GW_GROUP;
    if (defaults.some((d) => d.group === group && d.kind === k.kind)) kinds.push({ group, kind: k.kind });
    else invalid.push(`${group}/${k.kind}`);
  }
  return { kinds, invalid };
}

function resolveCertificates(
  ctx: TranslationContext,
  gw: Gateway,
  listener: Listener,
  conditions: ConditionSet,
): TlsCertificate[] | undefined {
  const gen = gw.metadata.generation;
  const refs = listener.tls?.certificateRefs ?? [];
  if (refs.length === 0) {
    conditions.set(
      condition(
        'ResolvedRefs',
        false,
        'InvalidCertificateRef',
        'Listener must have at least 1 TLS certificate ref',
        gen,
      ),
    );
    return undefined;
  }
  const out: TlsCertificate[] = [];
  for (const ref of refs) {
    const ns = ref.namespace ?? gw.metadata.namespace ?? 'default';
    if ((ref.group ?? '') !== '' || (ref.kind ?? 'Secret') !== 'Secret') {
      conditions.set(
        condition(
          'ResolvedRefs',
          false,
          'InvalidCertificateRef',
          `Certificate ref must be a core Secret, got ${ref.group ?? ''}/${ref.kind ?? ''}`,
          gen,
        ),
      );
      return undefined;
    }
    if (
      !referenceAllowed(
        ctx.snapshot,
        { group: GW_GROUP, kind: 'Gateway', namespace: gw.metadata.namespace ?? '' },
        { group: '', kind: 'Secret', namespace: ns, name: ref.name },
      )
    ) {
      conditions.set(
        condition(
          'ResolvedRefs',
          false,
          'RefNotPermitted',
          `Certificate ref to secret ${ns}/${ref.name} not permitted by any ReferenceGrant.`,
          gen,
        ),
      );
      return undefined;
    }
    const crt = secretValue(ctx.snapshot, ns, ref.name, 'tls.crt');
    const key = secretValue(ctx.snapshot, ns, ref.name, 'tls.key');
    if (getResource(ctx.snapshot, 'Secret', ns, ref.name) === undefined) {
      conditions.set(
        condition('ResolvedRefs', false, 'InvalidCertificateRef', `Secret ${ns}/${ref.name} does not exist.`, gen),
      );
      return undefined;
    }
    if (crt === undefined || key === undefined || !crt.includes('BEGIN CERTIFICATE') || !key.includes('PRIVATE KEY')) {
      conditions.set(
        condition(
          'ResolvedRefs',
          false,
          'InvalidCertificateRef',
          `Secret ${ns}/${ref.name} must contain PEM tls.crt and tls.key.`,
          gen,
        ),
      );
      return undefined;
    }
    out.push({ name: `${ns}/${ref.name}`, certificateChain: crt, privateKey: key });
  }
  return out;
}

/** Builds a GatewayContext for every Gateway of one of our classes. */
export function translateGateways(ctx: TranslationContext): void {
  const classes = translateClasses(ctx);
  for (const gw of listResources(ctx.snapshot, 'Gateway')) {
    const cls = classes.get(gw.spec.gatewayClassName);
    if (cls === undefined) continue; // not ours: another controller writes its status
    const ns = gw.metadata.namespace ?? 'default';
    const key = `${ns}/${gw.metadata.name}`;
    const gen = gw.metadata.generation;
    const gwConditions = new ConditionSet();
    // Gateway-level EnvoyProxy (infrastructure.parametersRef) replaces the class one.
    let envoyProxy = cls.envoyProxy;
    const infraRef = gw.spec.infrastructure?.parametersRef;
    if (infraRef !== undefined && infraRef.kind === 'EnvoyProxy') {
      envoyProxy = getResource(ctx.snapshot, 'EnvoyProxy', ns, infraRef.name) ?? envoyProxy;
    }
    const context: GatewayContext = {
      gateway: gw,
      key,
      ...(envoyProxy === undefined ? {} : { envoyProxy }),
      listeners: [],
      filterOrder: (envoyProxy?.spec.filterOrder ?? []).map((p) => ({ ...p })),
      conditions: gwConditions,
    };
    if (!cls.ok) {
      gwConditions.set(
        condition('Accepted', false, 'InvalidParameters', `GatewayClass ${cls.cls.metadata.name} is not accepted`, gen),
      );
      gwConditions.set(
        condition(
          'Programmed',
          false,
          'Invalid',
          'The Gateway is not programmed because its GatewayClass is invalid',
          gen,
        ),
      );
      ctx.gateways.set(key, context);
      continue;
    }
    gwConditions.set(condition('Accepted', true, 'Accepted', 'The Gateway has been scheduled by envext', gen));

    // Listeners sharing a port must agree on the protocol and differ in hostname.
    const byPort = new Map<number, Listener[]>();
    for (const l of gw.spec.listeners) byPort.set(l.port, [...(byPort.get(l.port) ?? []), l]);

    for (const listener of gw.spec.listeners) {
      const conditions = new ConditionSet();
      const { kinds, invalid } = supportedKinds(listener);
      const lc: ListenerContext = {
        gateway: context,
        spec: listener,
        ready: false,
        attachedRoutes: 0,
        conditions,
        supportedKinds: kinds,
      };
      context.listeners.push(lc);
      const proto = listener.protocol;
      if (proto !== 'HTTP' && proto !== 'HTTPS') {
        conditions.set(
          condition(
            'Accepted',
            false,
            'UnsupportedProtocol',
            `Protocol ${proto} is not supported by envext yet; supported protocols are HTTP and HTTPS`,
            gen,
          ),
        );
        conditions.set(
          condition('Programmed', false, 'Invalid', 'Listener is invalid, see other Conditions for details.', gen),
        );
        continue;
      }
      const peers = byPort.get(listener.port) ?? [];
      if (peers.some((p) => p.protocol !== proto)) {
        conditions.set(
          condition(
            'Conflicted',
            true,
            'ProtocolConflict',
            'All listeners for a given port must use a compatible protocol',
            gen,
          ),
        );
        conditions.set(
          condition('Programmed', false, 'Invalid', 'Listener is invalid, see other Conditions for details.', gen),
        );
        continue;
      }
      if (peers.filter((p) => (p.hostname ?? '') === (listener.hostname ?? '')).length > 1) {
        conditions.set(
          condition(
            'Conflicted',
            true,
            'HostnameConflict',
            'All listeners for a given port must use a unique hostname',
            gen,
          ),
        );
        conditions.set(
          condition('Programmed', false, 'Invalid', 'Listener is invalid, see other Conditions for details.', gen),
        );
        continue;
      }
      if (invalid.length > 0) {
        conditions.set(
          condition('ResolvedRefs', false, 'InvalidRouteKinds', `Unsupported route kinds: ${invalid.join(', ')}`, gen),
        );
      }
      let certificates: TlsCertificate[] | undefined;
      if (proto === 'HTTPS') {
        if (listener.tls?.mode === 'Passthrough') {
          conditions.set(
            condition(
              'Accepted',
              false,
              'UnsupportedValue',
              'TLS mode Passthrough is not supported on HTTPS listeners',
              gen,
            ),
          );
          conditions.set(
            condition('Programmed', false, 'Invalid', 'Listener is invalid, see other Conditions for details.', gen),
          );
          continue;
        }
        certificates = resolveCertificates(ctx, gw, listener, conditions);
        if (certificates === undefined) {
          conditions.set(
            condition('Programmed', false, 'Invalid', 'Listener is invalid, see other Conditions for details.', gen),
          );
          continue;
        }
      }
      lc.ready = true;
      lc.ir = {
        name: `${key}/${listener.name}`,
        metadata: { kind: 'Gateway', namespace: ns, name: gw.metadata.name, sectionName: listener.name },
        address: '0.0.0.0',
        port: containerPort(listener.port),
        externalPort: listener.port,
        hostnames: [listener.hostname ?? '*'],
        ...(certificates === undefined ? {} : { tls: { certificates } }),
        routes: [],
      };
      conditions.set(
        condition('Programmed', true, 'Programmed', 'Sending translated listener configuration to the data plane', gen),
      );
      conditions.set(condition('Accepted', true, 'Accepted', 'Listener has been successfully translated', gen));
      if (!conditions.has('ResolvedRefs'))
        conditions.set(condition('ResolvedRefs', true, 'ResolvedRefs', 'Listener references have been resolved', gen));
    }
    const anyReady = context.listeners.some((l) => l.ready);
    gwConditions.set(
      anyReady
        ? condition('Programmed', true, 'Programmed', 'The Gateway configuration is served to Envoy over xDS', gen)
        : condition('Programmed', false, 'Invalid', 'No listener of the Gateway is valid', gen),
    );
    ctx.gateways.set(key, context);
  }
}

/**
 * `envext serve --provider kubernetes`: the provider, the status writer and leader election on
 * one kubeconfig. A module of its own so that only this provider loads `@kubernetes/client-node`
 * (serve/cli.ts imports it on demand).
 */
import * as k8s from '@kubernetes/client-node';
import { EnvextError, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { KubernetesProvider } from '../provider/kubernetes/provider.js';
import { LeaderElector } from '../provider/kubernetes/leader-election.js';
import { StatusWriter } from '../provider/kubernetes/status-writer.js';
import type { ResourceSource, StatusSink } from './control-plane.js';

export interface KubernetesSourceOptions {
  /** A kubeconfig file; default: in-cluster, then $KUBECONFIG, then ~/.kube/config. */
  readonly kubeconfig: string | undefined;
  readonly controllerName: string;
  /** Namespaces to watch; empty: all. */
  readonly namespaces: readonly string[];
  /** Elect a leader with a Lease (only the leader writes statuses); false: write at once. */
  readonly leaderElection: boolean;
  readonly leaseNamespace: string;
  readonly identity: string | undefined;
  readonly log: Logger;
}

export async function kubernetesSource(
  o: KubernetesSourceOptions,
): Promise<{ source: ResourceSource; statusSink: StatusSink; elector: LeaderElector | undefined }> {
  const kc = new k8s.KubeConfig();
  try {
    if (o.kubeconfig !== undefined) kc.loadFromFile(o.kubeconfig);
    else kc.loadFromDefault();
  } catch (e: unknown) {
    throw new EnvextError('SERVE_KUBECONFIG', `cannot load the kubeconfig: ${errorMessage(e)}`, {
      hint: 'pass --kubeconfig FILE, or run inside a cluster',
    });
  }
  const source = new KubernetesProvider({
    kubeConfig: kc,
    controllerName: o.controllerName,
    namespaces: o.namespaces,
    log: o.log.child({ component: 'provider-kubernetes' }),
  });
  const writer = new StatusWriter({
    kubeConfig: kc,
    controllerName: o.controllerName,
    log: o.log.child({ component: 'status-writer' }),
  });
  const statusSink: StatusSink = (statuses) => writer.update(statuses);
  if (!o.leaderElection) {
    await writer.setLeader(true);
    return { source, statusSink, elector: undefined };
  }
  const elector = new LeaderElector({
    kubeConfig: kc,
    namespace: o.leaseNamespace,
    ...(o.identity === undefined ? {} : { identity: o.identity }),
    onStartedLeading: () => void writer.setLeader(true),
    onStoppedLeading: () => void writer.setLeader(false),
    log: o.log.child({ component: 'leader-election' }),
  });
  return { source, statusSink, elector };
}

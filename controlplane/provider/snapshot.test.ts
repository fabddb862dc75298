import { describe, expect, it } from 'vitest';
import { SnapshotBuilder, builderFrom, getResource, listResources, resourceKey } from './snapshot.js';

const gw = (name: string, ns = 'default'): unknown => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'Gateway',
  metadata: { name, namespace: ns },
  spec: { gatewayClassName: 'c', listeners: [{ name: 'http', protocol: 'HTTP', port: 80 }] },
});

describe('ResourceSnapshot', () => {
  it('keys resources by kind and namespace/name, lists them in key order, and is frozen', () => {
    const b = new SnapshotBuilder();
    b.add(gw('b'), 'x#0');
    b.add(gw('a', 'z'), 'x#1');
    b.add(
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'GatewayClass',
        metadata: { name: 'c', namespace: 'ignored' },
        spec: { controllerName: 'x' },
      },
      'x#2',
    );
    const s = b.build(3);
    expect(s.revision).toBe(3);
    expect([...s.resources.Gateway.keys()]).toEqual(['default/b', 'z/a']);
    expect(listResources(s, 'Gateway').map((g) => g.metadata.name)).toEqual(['b', 'a']);
    expect(getResource(s, 'GatewayClass', undefined, 'c')?.metadata.namespace).toBeUndefined();
    expect(resourceKey('GatewayClass', 'x', 'c')).toBe('c');
    expect(Object.isFrozen(s)).toBe(true);
  });

  it('records objects given twice, and rejected objects with every problem', () => {
    const b = new SnapshotBuilder();
    b.add(gw('a'), 'one.yaml:1');
    b.add(gw('a'), 'two.yaml:4');
    b.add(
      { kind: 'Gateway', apiVersion: 'gateway.networking.k8s.io/v1', metadata: { name: 'bad' }, spec: {} },
      'three.yaml:9',
    );
    const s = b.build();
    expect(b.duplicates).toEqual(['Gateway default/a (one.yaml:1 and two.yaml:4)']);
    expect(s.rejected[0]).toMatchObject({ kind: 'Gateway', name: 'bad', source: 'three.yaml:9', unsupported: false });
    expect(s.rejected[0]?.problems.map((p) => p.field)).toEqual(['spec.gatewayClassName', 'spec.listeners']);
  });

  it('builderFrom shares unchanged objects and replaces without a duplicate warning', () => {
    const b = new SnapshotBuilder();
    b.add(gw('a'), 'x');
    b.add(gw('b'), 'x');
    const s1 = b.build(1);
    const b2 = builderFrom(s1);
    b2.add(gw('a'), 'edit');
    b2.delete('Gateway', 'default', 'b');
    const s2 = b2.build(2);
    expect(b2.duplicates).toEqual([]);
    expect(s2.resources.Gateway.get('default/a')).not.toBe(s1.resources.Gateway.get('default/a'));
    expect([...s2.resources.Gateway.keys()]).toEqual(['default/a']);
    expect(s1.resources.Gateway.size).toBe(2); // the old snapshot is untouched
    const b3 = builderFrom(s2);
    expect(b3.build(3).resources.Gateway.get('default/a')).toBe(s2.resources.Gateway.get('default/a'));
  });

  it('keeps the map of a kind nothing changed in, and only that kind', () => {
    const b = new SnapshotBuilder();
    b.add(gw('a'), 'x');
    const s1 = b.build(1);
    const same = builderFrom(s1).build(2);
    expect(same.resources.Gateway).toBe(s1.resources.Gateway);
    const edited = builderFrom(s1);
    edited.add(gw('b'), 'y');
    const s2 = edited.build(2);
    expect(s2.resources.Gateway).not.toBe(s1.resources.Gateway);
    expect(s2.resources.HTTPRoute).toBe(s1.resources.HTTPRoute);
    const deleted = builderFrom(s2);
    deleted.delete('Gateway', 'default', 'b');
    expect(deleted.build(3).resources.Gateway).not.toBe(s2.resources.Gateway);
    const missed = builderFrom(s2);
    expect(missed.delete('Gateway', 'default', 'nope')).toBe(false);
    expect(missed.build(4).resources.Gateway).toBe(s2.resources.Gateway);
  });
});

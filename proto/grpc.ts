/**
 * gRPC service definitions for `@grpc/grpc-js`, built from the shared protobufjs Root (no second
 * parse by proto-loader). Messages cross the boundary as plain objects in DECODE_OPTIONS form.
 */
import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { DECODE_OPTIONS, type ProtoObject } from './codec.js';
import { serviceType } from './loader.js';

const definitions = new Map<string, grpc.ServiceDefinition>();

function serializer(type: protobuf.Type): (value: ProtoObject) => Buffer {
  return (value) => Buffer.from(type.encode(type.fromObject(value)).finish());
}

function deserializer(type: protobuf.Type): (bytes: Buffer) => ProtoObject {
  return (bytes) => type.toObject(type.decode(bytes), DECODE_OPTIONS);
}

/**
 * The grpc-js definition of a service (`envoy.service.discovery.v3.AggregatedDiscoveryService`),
 * for `server.addService(def, impl)` or `grpc.makeGenericClientConstructor(def, name)`.
 * Built once per service and cached.
 */
export function serviceDefinition(fullName: string): grpc.ServiceDefinition {
  const cached = definitions.get(fullName);
  if (cached) return cached;
  const service = serviceType(fullName);
  const def: Record<string, grpc.MethodDefinition<ProtoObject, ProtoObject>> = {};
  for (const method of service.methodsArray) {
    method.resolve();
    const req = method.resolvedRequestType;
    const res = method.resolvedResponseType;
    if (req === null || res === null) throw new Error(`unresolved types in ${method.fullName}`);
    def[method.name] = {
      path: `/${service.fullName.slice(1)}/${method.name}`,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
      requestSerialize: serializer(req),
      requestDeserialize: deserializer(req),
      responseSerialize: serializer(res),
      responseDeserialize: deserializer(res),
      originalName: method.name.charAt(0).toLowerCase() + method.name.slice(1),
    };
  }
  definitions.set(fullName, def);
  return def;
}

/** A client class for the service, as `grpc.loadPackageDefinition` would give. */
export function clientConstructor(fullName: string): grpc.ServiceClientConstructor {
  return grpc.makeGenericClientConstructor(serviceDefinition(fullName), fullName);
}

/**
 * Schema declarations (schema.ts) of every kind the control plane reads.
 *
 * The three `gateway.envoyproxy.io/v1alpha1` kinds follow Envoy Gateway's generated CRDs at
 * upstream commit d32f2829 (`charts/gateway-helm/charts/crds/crds/generated/`): field names,
 * limits, patterns, defaults and the CEL rules with their messages verbatim
 * (`reference/eg-extension-policy.md` a–c). The Gateway API and core kinds are declared only as
 * far as the translator reads them; their own CRDs/APIs are upstream's.
 */
import {
  anyJson,
  arr,
  bool,
  field,
  has,
  int,
  list,
  map,
  obj,
  scalar,
  str,
  type CelRule,
  type Schema,
} from './schema.js';

// ---- shared pieces ------------------------------------------------------------------------------

const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
const GROUP = str({ maxLength: 253, pattern: '^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$' });
const KIND = str({ minLength: 1, maxLength: 63, pattern: '^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$' });
const NAME = str({ minLength: 1, maxLength: 253 });
const NAMESPACE = str({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' });
const SECTION_NAME = str({ minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN });
const PORT = int({ minimum: 1, maximum: 65535, format: 'int32' });
const DURATION = str({ pattern: '^([0-9]{1,5}(h|m|s|ms)){1,4}$' });

export const objectMeta = obj(
  {
    name: str(),
    namespace: str(),
    uid: str(),
    generation: int(),
    resourceVersion: str(),
    creationTimestamp: scalar(),
    labels: map(str()),
    annotations: map(str()),
  },
  { required: ['name'] },
);

const labelSelector = obj({
  matchLabels: map(str()),
  matchExpressions: arr(
    obj(
      { key: str(), operator: str({ enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }), values: arr(str()) },
      { required: ['key', 'operator'] },
    ),
  ),
});

const secretObjectReference = obj(
  { group: str({ default: '' }), kind: str({ default: 'Secret' }), name: NAME, namespace: NAMESPACE },
  { required: ['name'] },
);

const backendObjectReference = {
  group: str({ maxLength: 253, default: '' }),
  kind: str({ maxLength: 63, default: 'Service' }),
  name: NAME,
  namespace: NAMESPACE,
  port: PORT,
};

const backendRef = obj(
  { ...backendObjectReference, weight: int({ minimum: 0, maximum: 1000000, default: 1 }) },
  { required: ['name'] },
);

/** A resource: apiVersion, kind, metadata, and the given top-level fields. */
function resource(fields: Readonly<Record<string, Schema>>, required: readonly string[] = []): Schema {
  return obj(
    { apiVersion: str(), kind: str(), metadata: objectMeta, status: anyJson(), ...fields },
    { required: ['metadata', ...required] },
  );
}

// ---- core ---------------------------------------------------------------------------------------

export const serviceSchema = resource(
  {
    spec: obj(
      {
        type: str(),
        clusterIP: str(),
        ports: arr(
          obj(
            {
              name: str(),
              port: PORT,
              protocol: str({ enum: ['TCP', 'UDP', 'SCTP'], default: 'TCP' }),
              targetPort: scalar(),
              appProtocol: str(),
            },
            { required: ['port'] },
          ),
        ),
      },
      { preserveUnknown: true },
    ),
  },
  ['spec'],
);

export const endpointSliceSchema = resource({
  addressType: str({ enum: ['IPv4', 'IPv6', 'FQDN'] }),
  endpoints: arr(
    obj(
      {
        addresses: arr(str(), { minItems: 1 }),
        conditions: obj({ ready: bool(), serving: bool(), terminating: bool() }),
        zone: str(),
      },
      { required: ['addresses'], preserveUnknown: true },
    ),
  ),
  ports: arr(obj({ name: str(), port: int(), protocol: str() }, { preserveUnknown: true })),
});

export const secretSchema = resource({ type: str(), data: map(str()), stringData: map(str()) });
export const configMapSchema = resource({ data: map(str()), binaryData: map(str()) });
export const namespaceSchema = resource({ spec: anyJson() });

// ---- Gateway API --------------------------------------------------------------------------------

export const gatewayClassSchema = resource(
  {
    spec: obj(
      {
        controllerName: str({ minLength: 1, maxLength: 253 }),
        description: str({ maxLength: 64 }),
        parametersRef: obj(
          { group: GROUP, kind: KIND, name: NAME, namespace: NAMESPACE },
          { required: ['group', 'kind', 'name'] },
        ),
      },
      { required: ['controllerName'] },
    ),
  },
  ['spec'],
);

const listenerSchema = obj(
  {
    name: SECTION_NAME,
    hostname: str({
      minLength: 1,
      maxLength: 253,
      pattern: '^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
    }),
    port: PORT,
    protocol: str({ minLength: 1, maxLength: 255 }),
    tls: obj({
      mode: str({ enum: ['Terminate', 'Passthrough'], default: 'Terminate' }),
      certificateRefs: arr(secretObjectReference, { maxItems: 64 }),
      options: map(str()),
    }),
    allowedRoutes: obj({
      namespaces: obj({ from: str({ enum: ['All', 'Same', 'Selector'], default: 'Same' }), selector: labelSelector }),
      kinds: arr(obj({ group: str({ default: GATEWAY_API_GROUP() }), kind: KIND }, { required: ['kind'] }), {
        maxItems: 8,
      }),
    }),
  },
  { required: ['name', 'port', 'protocol'] },
);

function GATEWAY_API_GROUP(): string {
  return 'gateway.networking.k8s.io';
}

export const gatewaySchema = resource(
  {
    spec: obj(
      {
        gatewayClassName: NAME,
        listeners: arr(listenerSchema, { minItems: 1, maxItems: 64 }),
        addresses: arr(anyJson()),
        infrastructure: obj(
          { parametersRef: obj({ group: GROUP, kind: KIND, name: NAME }, { required: ['group', 'kind', 'name'] }) },
          { preserveUnknown: true },
        ),
      },
      { required: ['gatewayClassName', 'listeners'] },
    ),
  },
  ['spec'],
);

const parentRef = obj(
  { group: GROUP, kind: KIND, namespace: NAMESPACE, name: NAME, sectionName: SECTION_NAME, port: PORT },
  { required: ['name'] },
);

const headerMatch = obj(
  {
    type: str({ enum: ['Exact', 'RegularExpression'], default: 'Exact' }),
    name: str({ minLength: 1, maxLength: 256 }),
    value: str({ maxLength: 4096 }),
  },
  { required: ['name', 'value'] },
);

const headerFilter = obj({
  set: arr(obj({ name: str({ minLength: 1 }), value: str() }, { required: ['name', 'value'] }), { maxItems: 16 }),
  add: arr(obj({ name: str({ minLength: 1 }), value: str() }, { required: ['name', 'value'] }), { maxItems: 16 }),
  remove: arr(str(), { maxItems: 16 }),
});

const pathModifier = obj(
  {
    type: str({ enum: ['ReplaceFullPath', 'ReplacePrefixMatch'] }),
    replaceFullPath: str({ maxLength: 1024 }),
    replacePrefixMatch: str({ maxLength: 1024 }),
  },
  { required: ['type'] },
);

const routeFilter = obj(
  {
    type: str({
      enum: [
        'RequestHeaderModifier',
        'ResponseHeaderModifier',
        'RequestMirror',
        'RequestRedirect',
        'URLRewrite',
        'ExtensionRef',
        'CORS',
        'ExternalAuth',
      ],
    }),
    requestHeaderModifier: headerFilter,
    responseHeaderModifier: headerFilter,
    requestRedirect: obj({
      scheme: str({ enum: ['http', 'https'] }),
      hostname: str(),
      path: pathModifier,
      port: PORT,
      statusCode: int({ enum: [301, 302, 303, 307, 308], default: 302 }),
    }),
    urlRewrite: obj({ hostname: str(), path: pathModifier }),
    requestMirror: obj(
      {
        backendRef: obj(backendObjectReference, { required: ['name'] }),
        percent: int({ minimum: 0, maximum: 100 }),
        fraction: anyJson(),
      },
      { required: ['backendRef'] },
    ),
    extensionRef: obj({ group: GROUP, kind: KIND, name: NAME }, { required: ['group', 'kind', 'name'] }),
    cors: anyJson(),
    externalAuth: anyJson(),
  },
  { required: ['type'] },
);

export const httpRouteSchema = resource(
  {
    spec: obj({
      parentRefs: arr(parentRef, { maxItems: 32 }),
      hostnames: arr(str({ minLength: 1, maxLength: 253 }), { maxItems: 16 }),
      rules: arr(
        obj({
          name: SECTION_NAME,
          matches: arr(
            obj({
              path: obj({
                type: str({ enum: ['Exact', 'PathPrefix', 'RegularExpression'], default: 'PathPrefix' }),
                value: str({ maxLength: 1024, default: '/' }),
              }),
              headers: arr(headerMatch, { maxItems: 16 }),
              queryParams: arr(headerMatch, { maxItems: 16 }),
              method: str({ enum: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] }),
            }),
            { maxItems: 64 },
          ),
          filters: arr(routeFilter, { maxItems: 16 }),
          backendRefs: arr(
            obj(
              {
                ...backendObjectReference,
                weight: int({ minimum: 0, maximum: 1000000, default: 1 }),
                filters: arr(routeFilter),
              },
              { required: ['name'] },
            ),
            { maxItems: 16 },
          ),
          timeouts: obj({ request: DURATION, backendRequest: DURATION }),
          sessionPersistence: anyJson(),
          retry: anyJson(),
        }),
        { maxItems: 16 },
      ),
    }),
  },
  ['spec'],
);

export const grpcRouteSchema = resource(
  {
    spec: obj({
      parentRefs: arr(parentRef, { maxItems: 32 }),
      hostnames: arr(str({ minLength: 1, maxLength: 253 }), { maxItems: 16 }),
      rules: arr(
        obj({
          name: SECTION_NAME,
          matches: arr(
            obj({
              method: obj({
                type: str({ enum: ['Exact', 'RegularExpression'], default: 'Exact' }),
                service: str(),
                method: str(),
              }),
              headers: arr(headerMatch),
            }),
          ),
          filters: arr(routeFilter),
          backendRefs: arr(backendRef),
        }),
      ),
    }),
  },
  ['spec'],
);

export const referenceGrantSchema = resource(
  {
    spec: obj(
      {
        from: arr(
          obj({ group: str(), kind: KIND, namespace: NAMESPACE }, { required: ['group', 'kind', 'namespace'] }),
          { minItems: 1, maxItems: 16 },
        ),
        to: arr(obj({ group: str(), kind: KIND, name: NAME }, { required: ['group', 'kind'] }), {
          minItems: 1,
          maxItems: 16,
        }),
      },
      { required: ['from', 'to'] },
    ),
  },
  ['spec'],
);

// ---- EnvoyExtensionPolicy ---------------------------------------------------------------------

const POLICY_KINDS = ['Gateway', 'ListenerSet', 'HTTPRoute', 'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute'];
const XROUTE_KINDS = ['HTTPRoute', 'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute'];

const targetRef = obj(
  { group: GROUP, kind: KIND, name: NAME, sectionName: SECTION_NAME },
  { required: ['group', 'kind', 'name'] },
);

const targetSelector = obj(
  {
    group: str({
      default: 'gateway.networking.k8s.io',
      maxLength: 253,
      pattern: '^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
    }),
    kind: KIND,
    matchLabels: map(str()),
    matchExpressions: arr(obj({ key: str(), operator: str(), values: arr(str()) }, { required: ['key', 'operator'] })),
    namespaces: obj(
      { from: str({ enum: ['Same', 'All', 'Selector'], default: 'Same' }), selector: labelSelector },
      {
        rules: [
          {
            rule: "self.from == 'Selector' ? has(self.selector) : true",
            message: 'selector must be specified when from is Selector',
            check: (s) => field(s, 'from') !== 'Selector' || has(s, 'selector'),
          },
        ],
      },
    ),
  },
  {
    required: ['kind'],
    rules: [
      {
        rule: "has(self.group) ? self.group == 'gateway.networking.k8s.io' : true ",
        message: 'group must be gateway.networking.k8s.io',
        check: (s) => !has(s, 'group') || field(s, 'group') === 'gateway.networking.k8s.io',
      },
    ],
  },
);

const wasmCodeSource = obj(
  {
    type: str({ enum: ['HTTP', 'Image'] }),
    http: obj(
      {
        url: str({
          minLength: 1,
          pattern:
            '^((https?:)(\\/\\/\\/?)([\\w]*(?::[\\w]*)?@)?([\\d\\w\\.-]+)(?::(\\d+))?)?([\\/\\\\\\w\\.()-]*)?(?:([?][^#]*)?(#.*)?)*',
        }),
        sha256: str({ description: 'SHA256 checksum that will be used to verify the wasm code.' }),
        tls: obj({ caCertificateRef: secretObjectReference }, { required: ['caCertificateRef'] }),
      },
      { required: ['url'] },
    ),
    image: obj(
      {
        url: str({ minLength: 1 }),
        sha256: str(),
        pullSecretRef: obj(
          { group: str({ default: '' }), kind: str({ default: 'Secret' }), name: NAME, namespace: NAMESPACE },
          {
            required: ['name'],
            rules: [
              {
                rule: "self.kind == 'Secret'",
                message: 'only support Secret kind.',
                check: (s) => field(s, 'kind') === 'Secret',
              },
            ],
          },
        ),
        tls: obj({ caCertificateRef: secretObjectReference }, { required: ['caCertificateRef'] }),
      },
      { required: ['url'] },
    ),
    pullPolicy: str({ enum: ['IfNotPresent', 'Always'] }),
  },
  {
    required: ['type'],
    rules: [
      {
        rule: "self.type == 'HTTP' ? has(self.http) : !has(self.http)",
        message: 'If type is HTTP, http field needs to be set.',
        check: (s) => (field(s, 'type') === 'HTTP' ? has(s, 'http') : !has(s, 'http')),
      },
      {
        rule: "self.type == 'Image' ? has(self.image) : !has(self.image)",
        message: 'If type is Image, image field needs to be set.',
        check: (s) => (field(s, 'type') === 'Image' ? has(s, 'image') : !has(s, 'image')),
      },
    ],
  },
);

export const wasmSchema = obj(
  {
    name: str(),
    rootID: str(),
    code: wasmCodeSource,
    config: anyJson('Configuration passed to the plugin, serialized to JSON.'),
    failOpen: bool({ default: false }),
    env: obj({ hostKeys: arr(str()) }),
  },
  { required: ['code'] },
);

const ATTRIBUTE = str({
  pattern: '^(connection\\.|source\\.|destination\\.|request\\.|response\\.|upstream\\.|xds\\.route_)[a-z_1-9]*$',
});
const BODY_MODE = str({ enum: ['Streamed', 'Buffered', 'BufferedPartial', 'FullDuplexStreamed'] });
const processingSide = obj({ body: BODY_MODE, attributes: arr(ATTRIBUTE) });

const STATUS_ON_ERROR = [
  400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 423, 424, 426,
  428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
];

const extProcBackendRef = obj(
  {
    ...backendObjectReference,
    weight: int({ minimum: 0, maximum: 1000000, default: 1, format: 'int32' }),
    fallback: bool(),
  },
  {
    required: ['name'],
    rules: [
      {
        rule: "(size(self.group) == 0 && self.kind == 'Service') ? has(self.port) : true",
        message: 'Must have port for Service reference',
        check: (s) => !(field(s, 'group') === '' && field(s, 'kind') === 'Service') || has(s, 'port'),
      },
    ],
  },
);

function bodyModes(s: unknown): unknown[] {
  const pm = field(s, 'processingMode');
  return [field(field(pm, 'request'), 'body'), field(field(pm, 'response'), 'body')];
}

export const extProcSchema = obj(
  {
    backendRef: anyJson('Deprecated: use backendRefs.'),
    backendRefs: arr(extProcBackendRef, { maxItems: 16 }),
    backendSettings: obj({}, { preserveUnknown: true }),
    messageTimeout: DURATION,
    failOpen: bool({ default: false }),
    processingMode: obj({ request: processingSide, response: processingSide, allowModeOverride: bool() }),
    shadowMode: bool(),
    metadata: obj({
      accessibleNamespaces: arr(str()),
      writableNamespaces: arr(str(), {
        maxItems: 8,
        rules: [
          {
            rule: "self.all(f, !f.startsWith('envoy.filters.http'))",
            message: 'writableNamespaces cannot contain well-known Envoy HTTP filter namespaces',
            check: (s) =>
              Array.isArray(s) && s.every((f) => typeof f !== 'string' || !f.startsWith('envoy.filters.http')),
          },
        ],
      }),
    }),
    statusOnError: int({ enum: STATUS_ON_ERROR, format: 'int32' }),
  },
  {
    rules: [
      {
        rule: '!has(self.backendRef)',
        message: 'BackendRefs must be used, backendRef is not supported.',
        check: (s) => !has(s, 'backendRef'),
      },
      {
        rule: "has(self.backendRefs) ? self.backendRefs.all(f, f.kind == 'Service' || f.kind == 'ServiceImport' || f.kind == 'Backend') : true",
        message: 'BackendRefs only supports Service, ServiceImport, and Backend kind.',
        check: (s) =>
          list(s, 'backendRefs').every((r) =>
            ['Service', 'ServiceImport', 'Backend'].includes(String(field(r, 'kind'))),
          ),
      },
      {
        rule: "has(self.backendRefs) ? self.backendRefs.all(f, f.group == '' || f.group == 'multicluster.x-k8s.io' || f.group == 'gateway.envoyproxy.io') : true",
        message: 'BackendRefs only supports Core, multicluster.x-k8s.io, and gateway.envoyproxy.io groups.',
        check: (s) =>
          list(s, 'backendRefs').every((r) =>
            ['', 'multicluster.x-k8s.io', 'gateway.envoyproxy.io'].includes(String(field(r, 'group'))),
          ),
      },
      {
        rule: "!(has(self.failOpen) && self.failOpen == true && ((has(self.processingMode) && has(self.processingMode.request) && has(self.processingMode.request.body) && self.processingMode.request.body == 'FullDuplexStreamed') || (has(self.processingMode) && has(self.processingMode.response) && has(self.processingMode.response.body) && self.processingMode.response.body == 'FullDuplexStreamed')))",
        message: 'If FullDuplexStreamed body processing mode is used, FailOpen must be false.',
        check: (s) => !(field(s, 'failOpen') === true && bodyModes(s).includes('FullDuplexStreamed')),
      },
      {
        rule: "!(has(self.shadowMode) && self.shadowMode == true && ((has(self.processingMode) && has(self.processingMode.request) && has(self.processingMode.request.body) && self.processingMode.request.body != 'Streamed') || (has(self.processingMode) && has(self.processingMode.response) && has(self.processingMode.response.body) && self.processingMode.response.body != 'Streamed')))",
        message: 'If shadowMode is enabled, body processing mode must be Streamed or unset.',
        check: (s) =>
          !(field(s, 'shadowMode') === true && bodyModes(s).some((b) => b !== undefined && b !== 'Streamed')),
      },
    ],
  },
);

const luaSchema = obj(
  {
    type: str({ enum: ['Inline', 'ValueRef'], default: 'Inline' }),
    inline: str(),
    valueRef: obj({ group: str(), kind: str(), name: str() }, { required: ['group', 'kind', 'name'] }),
    filterContext: anyJson(),
  },
  {
    required: ['type'],
    rules: [
      {
        rule: "(self.type == 'Inline' && has(self.inline) && !has(self.valueRef)) || (self.type == 'ValueRef' && !has(self.inline) && has(self.valueRef))",
        message: 'Exactly one of inline or valueRef must be set with correct type.',
        check: (s) =>
          (field(s, 'type') === 'Inline' && has(s, 'inline') && !has(s, 'valueRef')) ||
          (field(s, 'type') === 'ValueRef' && !has(s, 'inline') && has(s, 'valueRef')),
      },
    ],
  },
);

const dynamicModuleSchema = obj(
  {
    name: str({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$' }),
    filterName: str(),
    config: anyJson(),
    terminalFilter: bool({ default: false }),
  },
  { required: ['name'] },
);

function targetKinds(s: unknown): unknown[] {
  const kinds: unknown[] = [];
  if (has(s, 'targetRef')) kinds.push(field(field(s, 'targetRef'), 'kind'));
  for (const r of list(s, 'targetRefs')) kinds.push(field(r, 'kind'));
  for (const r of list(s, 'targetSelectors')) kinds.push(field(r, 'kind'));
  return kinds;
}

const eepRules: readonly CelRule[] = [
  {
    rule: '(has(self.targetRef) && !has(self.targetRefs)) || (!has(self.targetRef) && has(self.targetRefs)) || (has(self.targetSelectors) && self.targetSelectors.size() > 0) ',
    message: 'either targetRef or targetRefs must be used',
    check: (s) =>
      (has(s, 'targetRef') && !has(s, 'targetRefs')) ||
      (!has(s, 'targetRef') && has(s, 'targetRefs')) ||
      list(s, 'targetSelectors').length > 0,
  },
  {
    rule: "has(self.targetRef) ? self.targetRef.group == 'gateway.networking.k8s.io' : true ",
    message: 'this policy can only have a targetRef.group of gateway.networking.k8s.io',
    check: (s) => !has(s, 'targetRef') || field(field(s, 'targetRef'), 'group') === 'gateway.networking.k8s.io',
  },
  {
    rule: "has(self.targetRef) ? self.targetRef.kind in ['Gateway', 'ListenerSet', 'HTTPRoute', 'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute'] : true ",
    message:
      'this policy can only have a targetRef.kind of Gateway/ListenerSet/HTTPRoute/GRPCRoute/TCPRoute/UDPRoute/TLSRoute',
    check: (s) => !has(s, 'targetRef') || POLICY_KINDS.includes(String(field(field(s, 'targetRef'), 'kind'))),
  },
  {
    rule: "has(self.targetRefs) ? self.targetRefs.all(ref, ref.group == 'gateway.networking.k8s.io') : true ",
    message: 'this policy can only have a targetRefs[*].group of gateway.networking.k8s.io',
    check: (s) => list(s, 'targetRefs').every((r) => field(r, 'group') === 'gateway.networking.k8s.io'),
  },
  {
    rule: "has(self.targetRefs) ? self.targetRefs.all(ref, ref.kind in ['Gateway', 'ListenerSet', 'HTTPRoute', 'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute']) : true ",
    message:
      'this policy can only have a targetRefs[*].kind of Gateway/ListenerSet/HTTPRoute/GRPCRoute/TCPRoute/UDPRoute/TLSRoute',
    check: (s) => list(s, 'targetRefs').every((r) => POLICY_KINDS.includes(String(field(r, 'kind')))),
  },
  {
    rule: "has(self.mergeType) ? ((!has(self.targetRef) || self.targetRef.kind in ['HTTPRoute', 'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute']) && (!has(self.targetRefs) || self.targetRefs.all(ref, ref.kind in ['HTTPRoute', 'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute'])) && (!has(self.targetSelectors) || self.targetSelectors.all(sel, sel.kind in ['HTTPRoute', 'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute']))) : true",
    message: 'mergeType can only be used with xRoute targets',
    check: (s) => !has(s, 'mergeType') || targetKinds(s).every((k) => XROUTE_KINDS.includes(String(k))),
  },
];

export const envoyExtensionPolicySchema = resource(
  {
    spec: obj(
      {
        targetRef: targetRef,
        targetRefs: arr(targetRef),
        targetSelectors: arr(targetSelector),
        mergeType: str({
          rules: [
            {
              rule: "self != 'Replace'",
              message: 'Replace is not a valid MergeType for EnvoyExtensionPolicy',
              check: (s) => s !== 'Replace',
            },
          ],
        }),
        wasm: arr(wasmSchema, { maxItems: 16 }),
        extProc: arr(extProcSchema, { maxItems: 16 }),
        lua: arr(luaSchema, { maxItems: 16 }),
        dynamicModule: arr(dynamicModuleSchema, { maxItems: 16 }),
      },
      {
        description: 'EnvoyExtensionPolicySpec defines the desired state of EnvoyExtensionPolicy.',
        rules: eepRules,
      },
    ),
  },
  ['spec'],
);

// ---- Backend ------------------------------------------------------------------------------------

const backendEndpoint = obj(
  {
    fqdn: obj(
      {
        hostname: str({
          minLength: 1,
          maxLength: 253,
          pattern: '^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\\.?$',
        }),
        port: int({ minimum: 0, maximum: 65535, format: 'int32' }),
      },
      { required: ['hostname', 'port'] },
    ),
    ip: obj(
      {
        address: str({
          minLength: 3,
          maxLength: 45,
          pattern:
            '^(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)$|^(([0-9a-fA-F]{1,4}:){1,7}[0-9a-fA-F]{1,4}|::|(([0-9a-fA-F]{1,4}:){0,5})?(:[0-9a-fA-F]{1,4}){1,2})$',
        }),
        port: int({ minimum: 0, maximum: 65535, format: 'int32' }),
      },
      { required: ['address', 'port'] },
    ),
    unix: obj(
      {
        path: str({
          rules: [
            {
              rule: 'size(self) <= 108',
              message: 'unix domain socket path must not exceed 108 characters',
              check: (s) => typeof s === 'string' && s.length <= 108,
            },
          ],
        }),
      },
      { required: ['path'] },
    ),
    hostname: str({ maxLength: 253 }),
    zone: str(),
  },
  {
    rules: [
      {
        rule: '(has(self.fqdn) || has(self.ip) || has(self.unix))',
        message: 'one of fqdn, ip or unix must be specified',
        check: (s) => has(s, 'fqdn') || has(s, 'ip') || has(s, 'unix'),
      },
      {
        rule: '((has(self.fqdn) && !(has(self.ip) || has(self.unix))) || (has(self.ip) && !(has(self.fqdn) || has(self.unix))) || (has(self.unix) && !(has(self.ip) || has(self.fqdn))))',
        message: 'only one of fqdn, ip or unix can be specified',
        check: (s) => [has(s, 'fqdn'), has(s, 'ip'), has(s, 'unix')].filter(Boolean).length <= 1,
      },
    ],
  },
);

export const backendSchema = resource(
  {
    spec: obj(
      {
        type: str({ enum: ['Endpoints', 'DynamicResolver'], default: 'Endpoints' }),
        endpoints: arr(backendEndpoint, {
          minItems: 1,
          maxItems: 256,
          rules: [
            {
              rule: 'self.all(f, has(f.fqdn)) || !self.exists(f, has(f.fqdn))',
              message: 'fqdn addresses cannot be mixed with other address types',
              check: (s) => Array.isArray(s) && (s.every((e) => has(e, 'fqdn')) || !s.some((e) => has(e, 'fqdn'))),
            },
          ],
        }),
        appProtocols: arr(
          str({ enum: ['gateway.envoyproxy.io/h2c', 'gateway.envoyproxy.io/ws', 'gateway.envoyproxy.io/wss'] }),
        ),
        fallback: bool(),
        tls: obj(
          {
            caCertificateRefs: arr(
              obj({ group: str(), kind: str(), name: str() }, { required: ['group', 'kind', 'name'] }),
              { maxItems: 8 },
            ),
            wellKnownCACertificates: str({ enum: ['System'] }),
            insecureSkipVerify: bool({ default: false }),
            sni: str({ minLength: 1, maxLength: 253 }),
            autoSNIFromEndpointHostname: bool(),
          },
          {
            preserveUnknown: true,
            rules: [
              {
                rule: '!(has(self.caCertificateRefs) && size(self.caCertificateRefs) > 0 && has(self.wellKnownCACertificates) && self.wellKnownCACertificates != "")',
                message: 'must not contain both CACertificateRefs and WellKnownCACertificates',
                check: (s) =>
                  !(
                    list(s, 'caCertificateRefs').length > 0 &&
                    has(s, 'wellKnownCACertificates') &&
                    field(s, 'wellKnownCACertificates') !== ''
                  ),
              },
              {
                rule: 'has(self.insecureSkipVerify) && self.insecureSkipVerify ? (!has(self.caCertificateRefs) || size(self.caCertificateRefs) == 0) && (!has(self.wellKnownCACertificates) || self.wellKnownCACertificates == "") : true',
                message:
                  'must not contain either CACertificateRefs or WellKnownCACertificates when InsecureSkipVerify is enabled',
                check: (s) =>
                  field(s, 'insecureSkipVerify') !== true ||
                  (list(s, 'caCertificateRefs').length === 0 &&
                    (!has(s, 'wellKnownCACertificates') || field(s, 'wellKnownCACertificates') === '')),
              },
              {
                rule: '!(has(self.sni) && has(self.autoSNIFromEndpointHostname) && self.autoSNIFromEndpointHostname)',
                message: 'sni and autoSNIFromEndpointHostname are mutually exclusive',
                check: (s) => !(has(s, 'sni') && field(s, 'autoSNIFromEndpointHostname') === true),
              },
            ],
          },
        ),
      },
      {
        rules: [
          {
            rule: "self.type != 'DynamicResolver' || !has(self.endpoints)",
            message: 'DynamicResolver type cannot have endpoints specified',
            check: (s) => field(s, 'type') !== 'DynamicResolver' || !has(s, 'endpoints'),
          },
          {
            rule: '!has(self.tls) || !has(self.tls.autoSNIFromEndpointHostname) || !self.tls.autoSNIFromEndpointHostname || !has(self.endpoints) || self.endpoints.all(e, has(e.fqdn) || has(e.hostname))',
            message: 'when autoSNIFromEndpointHostname is enabled, IP and Unix endpoints must define a hostname',
            check: (s) =>
              field(field(s, 'tls'), 'autoSNIFromEndpointHostname') !== true ||
              list(s, 'endpoints').every((e) => has(e, 'fqdn') || has(e, 'hostname')),
          },
        ],
      },
    ),
  },
  ['spec'],
);

// ---- EnvoyProxy -----------------------------------------------------------------------------------

/** The `EnvoyFilter` enum: filter types `filterOrder` may name (the router is not one: it is always last). */
export const ENVOY_FILTER_TYPES: readonly string[] = [
  'envoy.filters.http.health_check',
  'envoy.filters.http.fault',
  'envoy.filters.http.cors',
  'envoy.filters.http.header_mutation',
  'envoy.filters.http.ext_authz',
  'envoy.filters.http.api_key_auth',
  'envoy.filters.http.basic_auth',
  'envoy.filters.http.oauth2',
  'envoy.filters.http.jwt_authn',
  'envoy.filters.http.stateful_session',
  'envoy.filters.http.buffer',
  'envoy.filters.http.lua',
  'envoy.filters.http.ext_proc',
  'envoy.filters.http.wasm',
  'envoy.filters.http.dynamic_modules',
  'envoy.filters.http.rbac',
  'envoy.filters.http.local_ratelimit',
  'envoy.filters.http.ratelimit',
  'envoy.filters.http.custom_response',
  'envoy.filters.http.credential_injector',
  'envoy.filters.http.compressor',
  'envoy.filters.http.dynamic_forward_proxy',
  'envoy.filters.http.geoip',
  'envoy.filters.http.bandwidth_limit',
  'envoy.filters.http.grpc_web',
  'envoy.filters.http.grpc_stats',
  'envoy.filters.http.csrf',
];

const filterType = str({ enum: ENVOY_FILTER_TYPES });

export const envoyProxySchema = resource({
  spec: obj(
    {
      filterOrder: arr(
        obj(
          { name: filterType, before: filterType, after: filterType },
          {
            required: ['name'],
            rules: [
              {
                rule: 'has(self.before) || has(self.after)',
                message: 'one of before or after must be specified',
                check: (s) => has(s, 'before') || has(s, 'after'),
              },
              {
                rule: '!(has(self.before) && has(self.after))',
                message: 'only one of before or after can be specified',
                check: (s) => !(has(s, 'before') && has(s, 'after')),
              },
            ],
          },
        ),
      ),
      dynamicModules: arr(obj({ name: str() }, { required: ['name'], preserveUnknown: true })),
    },
    { preserveUnknown: true },
  ),
});

/** Schema per kind, for `validateResource`. */
export const SCHEMAS = {
  GatewayClass: gatewayClassSchema,
  Gateway: gatewaySchema,
  HTTPRoute: httpRouteSchema,
  GRPCRoute: grpcRouteSchema,
  ReferenceGrant: referenceGrantSchema,
  Service: serviceSchema,
  EndpointSlice: endpointSliceSchema,
  Secret: secretSchema,
  ConfigMap: configMapSchema,
  Namespace: namespaceSchema,
  EnvoyExtensionPolicy: envoyExtensionPolicySchema,
  Backend: backendSchema,
  EnvoyProxy: envoyProxySchema,
} as const;

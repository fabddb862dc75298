/**
 * `envext init filter NAME`: writes a ready-to-test AssemblyScript filter project.
 *
 * ```
 * NAME/
 *   package.json        scripts build/test; devDependencies envext + vitest
 *   asconfig.json       entry, output and runtime that `envext build` reads
 *   assembly/index.ts   a header filter (request + response header from the plugin config)
 *   assembly/tsconfig.json  AssemblyScript types for editors
 *   NAME.test.ts        vitest: builds the .wasm, drives it through envext's host emulator
 *   envoy.yaml          a static Envoy config that loads build/NAME.wasm
 *   README.md, .gitignore
 * ```
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { EnvextError, UsageError } from '../../common/errors.js';
import { packageVersion } from '../../common/package-root.js';

export interface InitOptions {
  readonly name: string;
  /** Target directory (created; must be empty or absent). */
  readonly dir: string;
  /** npm spec for the envext dependency; default `^<this version>`. */
  readonly envextSpec?: string;
}

const NAME = /^[a-z][a-z0-9-]{0,62}[a-z0-9]$/;

/** Writes the project and returns the relative paths written, in order. */
export function initFilter(options: InitOptions): string[] {
  const { name, dir } = options;
  if (!NAME.test(name)) {
    throw new UsageError(
      `filter name ${JSON.stringify(name)} is not valid`,
      'use 2-64 lower-case letters, digits and dashes, starting with a letter (it names the package, the .wasm and the Envoy filter)',
    );
  }
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new EnvextError('SDK_INIT_DIR_NOT_EMPTY', `${dir} already exists and is not empty`, {
      hint: 'choose another name or --dir, or remove the directory',
    });
  }
  const files = templates(name, options.envextSpec ?? `^${packageVersion()}`);
  for (const [rel, text] of files) {
    const path = join(dir, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  }
  return files.map(([rel]) => rel);
}

function templates(name: string, envextSpec: string): [string, string][] {
  const wasm = `build/${name}.wasm`;
  const pkg = {
    name,
    version: '0.1.0',
    private: true,
    type: 'module',
    description: `${name}: an Envoy proxy-wasm filter written in AssemblyScript with envext`,
    scripts: {
      build: 'envext build',
      test: 'envext build && vitest run',
    },
    devDependencies: {
      envext: envextSpec,
      vitest: '^4.1.0',
    },
  };
  const asconfig = {
    entries: ['assembly/index.ts'],
    targets: { release: { outFile: wasm } },
    options: { runtime: 'minimal' },
  };
  return [
    ['package.json', JSON.stringify(pkg, null, 2) + '\n'],
    ['asconfig.json', JSON.stringify(asconfig, null, 2) + '\n'],
    ['assembly/index.ts', filterSource(name)],
    [
      'assembly/tsconfig.json',
      JSON.stringify({ extends: 'assemblyscript/std/assembly.json', include: ['./**/*.ts'] }, null, 2) + '\n',
    ],
    [`${name}.test.ts`, testSource(name, wasm)],
    ['envoy.yaml', envoyYaml(name, wasm)],
    ['README.md', readme(name, wasm)],
    ['.gitignore', 'node_modules/\nbuild/\n'],
  ];
}

function filterSource(name: string): string {
  return `// ${name}: adds a request header and a response header.
//
// Plugin configuration: the value of the response header (a plain string); default "${name}".
import { FilterHeadersStatus, HttpContext, RootContext, logInfo, registerRootContext } from "envext/assembly";

class Root extends RootContext {
  value: string = "${name}";

  onConfigure(size: usize): bool {
    const cfg = this.getPluginConfigurationString();
    if (cfg != null && cfg.length > 0) this.value = cfg;
    logInfo("${name}: configured, response header value " + this.value);
    return true;
  }

  createHttpContext(id: u32): HttpContext | null {
    return new Filter(id, this);
  }
}

class Filter extends HttpContext {
  onRequestHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
    this.addRequestHeader("x-${name}-seen", "true");
    return FilterHeadersStatus.Continue;
  }

  onResponseHeaders(numHeaders: u32, endOfStream: bool): FilterHeadersStatus {
    this.replaceResponseHeader("x-${name}", changetype<Root>(this.root).value);
    return FilterHeadersStatus.Continue;
  }
}

registerRootContext((id: u32): RootContext => new Root(id));
`;
}

function testSource(name: string, wasm: string): string {
  return `// Drives the built module (\`npm test\` runs \`envext build\` first) through envext's host emulator,
// which behaves as Envoy's Wasm filter does.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HeadersStatus, HostEmulator } from 'envext/host';

const wasm = readFileSync(new URL('./${wasm}', import.meta.url));

describe('${name}', () => {
  it('adds its request and response headers', async () => {
    const host = await HostEmulator.create(wasm, { pluginConfiguration: 'hello' });
    host.startPlugin();
    const id = host.initializeHttpContext();
    expect(host.callOnRequestHeaders(id, { ':method': 'GET', ':path': '/', ':authority': 'example.com' }, true)).toBe(
      HeadersStatus.Continue,
    );
    expect(host.currentRequestHeaders(id)).toContainEqual(['x-${name}-seen', 'true']);
    expect(host.callOnResponseHeaders(id, { ':status': '200' }, true)).toBe(HeadersStatus.Continue);
    expect(host.currentResponseHeaders(id)).toContainEqual(['x-${name}', 'hello']);
    host.completeHttpContext(id);
    expect(host.logs('info')).toContain('${name}: configured, response header value hello');
    expect(host.vmFailed()).toBe(false);
  });
});
`;
}

function envoyYaml(name: string, wasm: string): string {
  return `# Envoy loading ${wasm} as an HTTP filter in front of a direct response.
# Run: envoy -c envoy.yaml   then: curl -si localhost:10000/
static_resources:
  listeners:
    - name: main
      address:
        socket_address: { address: 0.0.0.0, port_value: 10000 }
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: ingress
                route_config:
                  virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                        - match: { prefix: "/" }
                          direct_response: { status: 200, body: { inline_string: "ok\\n" } }
                http_filters:
                  - name: envoy.filters.http.wasm
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
                      config:
                        name: ${name}
                        root_id: ""
                        configuration:
                          "@type": type.googleapis.com/google.protobuf.StringValue
                          value: hello from envoy
                        vm_config:
                          runtime: envoy.wasm.runtime.v8
                          code:
                            local: { filename: ${wasm} }
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
`;
}

function readme(name: string, wasm: string): string {
  return `# ${name}

An Envoy HTTP filter (proxy-wasm ABI 0.2.1) written in AssemblyScript with
[envext](https://www.npmjs.com/package/envext).

- \`assembly/index.ts\`: the filter. It adds \`x-${name}-seen: true\` to requests and
  \`x-${name}: <plugin configuration>\` to responses.
- \`${name}.test.ts\`: tests that run the compiled module through envext's host emulator.
- \`envoy.yaml\`: an Envoy configuration that loads \`${wasm}\`.

\`\`\`sh
npm install
npm run build     # envext build → ${wasm}, checked against Envoy's imports
npm test          # build + vitest
envoy -c envoy.yaml
\`\`\`
`;
}

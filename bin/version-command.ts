import { createRequire } from 'node:module';
import { booleanOption, type Command } from '../common/cli.js';
import { packageVersion } from '../common/package-root.js';

const require = createRequire(import.meta.url);

function dependencyVersion(name: string): string {
  try {
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

/** `envext version`: what this build is made of, for bug reports. */
export const versionCommand: Command = {
  name: 'version',
  summary: 'print versions of envext, Node.js and the Envoy API protos',
  options: { json: { type: 'boolean', description: 'print JSON' } },
  examples: ['envext version', 'envext version --json'],
  run(ctx) {
    const info = {
      envext: packageVersion(),
      node: process.versions.node,
      proxyWasmAbi: '0.2.1',
      // The Envoy API protos come from @grpc/grpc-js-xds's deps/ (about Envoy 1.30); newer
      // ext_proc protos are the project's own, under proto/.
      envoyApiProtos: `@grpc/grpc-js-xds ${dependencyVersion('@grpc/grpc-js-xds')}`,
      grpcJs: dependencyVersion('@grpc/grpc-js'),
    };
    if (booleanOption(ctx, 'json')) {
      ctx.stdout.write(JSON.stringify(info, null, 2) + '\n');
      return;
    }
    ctx.stdout.write(
      `envext ${info.envext}\nnode ${info.node}\nproxy-wasm ABI ${info.proxyWasmAbi}\n` +
        `Envoy API protos ${info.envoyApiProtos}\ngrpc-js ${info.grpcJs}\n`,
    );
  },
};

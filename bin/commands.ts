/**
 * Every command of `envext`, in the order `envext --help` lists them. Each component declares
 * its commands in its own `cli.ts`; this file only names them, and imports a component's module
 * only when one of its commands is chosen (see `LazyCommand`). Keep each `summary` equal to the
 * component's own: `bin/dispatch.test.ts` checks it.
 */
import type { CommandGroup, CommandNode, LazyCommand } from '../common/cli.js';
import { packageVersion } from '../common/package-root.js';
import { versionCommand } from './version-command.js';

function lazy(name: string, summary: string, load: () => Promise<CommandNode>): LazyCommand {
  return { name, summary, load };
}

export const rootCommand: CommandGroup = {
  name: 'envext',
  summary: 'extend Envoy with WebAssembly and ext_proc, and attach extensions with EnvoyExtensionPolicy',
  subcommands: [
    // Wasm filters: write, build, run, publish.
    lazy('init', 'create new projects (filters)', async () => (await import('../extensions/sdk/cli.js')).initCommand),
    lazy(
      'build',
      'compile an AssemblyScript filter into a proxy-wasm module Envoy loads',
      async () => (await import('../extensions/sdk/cli.js')).buildCommand,
    ),
    lazy(
      'wasm',
      'inspect proxy-wasm modules and run them in the TypeScript host as Envoy would',
      async () => (await import('../extensions/host/cli.js')).wasmCommands,
    ),
    lazy(
      'oci',
      'push, pull and inspect Wasm modules in OCI registries',
      async () => (await import('../oci/cli.js')).ociCommand,
    ),
    // ext_proc sidecars.
    lazy(
      'ext-proc',
      'run an ext_proc handler as a sidecar for Envoy (Unix socket or TCP)',
      async () => (await import('../ext-proc/cli.js')).extProcCommand,
    ),
    // Control plane.
    lazy(
      'translate',
      'translate Gateway API + EnvoyExtensionPolicy YAML to statuses and Envoy xDS',
      async () => (await import('../controlplane/cli.js')).translateCommand,
    ),
    lazy(
      'serve',
      'run the control plane: xDS over ADS, the Wasm module server, statuses',
      async () => (await import('../controlplane/serve/cli.js')).serveCommand,
    ),
    lazy(
      'bootstrap',
      'print an Envoy bootstrap that connects to envext serve',
      async () => (await import('../controlplane/serve/cli.js')).bootstrapCommand,
    ),
    versionCommand,
  ],
};

export const program = { root: rootCommand, version: packageVersion() };

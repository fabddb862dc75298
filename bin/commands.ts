/**
 * Every command group of `envext`, in the order `envext --help` lists them. Each component
 * declares its commands in its own `cli.ts`; this file only collects them.
 */
import type { CommandGroup } from '../common/cli.js';
import { packageVersion } from '../common/package-root.js';
import { versionCommand } from './version-command.js';
import { extProcCommand } from '../ext-proc/cli.js';
import { ociCommand } from '../oci/cli.js';
import { buildCommand, initCommand } from '../extensions/sdk/cli.js';
import { wasmCommands } from '../extensions/host/cli.js';
import { translateCommand } from '../controlplane/cli.js';
import { bootstrapCommand, serveCommand } from '../controlplane/serve/cli.js';

export const rootCommand: CommandGroup = {
  name: 'envext',
  summary: 'extend Envoy with WebAssembly and ext_proc, and attach extensions with EnvoyExtensionPolicy',
  subcommands: [
    // Wasm filters: write, build, run, publish.
    initCommand,
    buildCommand,
    wasmCommands,
    ociCommand,
    // ext_proc sidecars.
    extProcCommand,
    // Control plane.
    translateCommand,
    serveCommand,
    bootstrapCommand,
    versionCommand,
  ],
};

export const program = { root: rootCommand, version: packageVersion() };

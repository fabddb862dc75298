/**
 * Every command group of `envext`, in the order `envext --help` lists them. Each component
 * declares its commands in its own `cli.ts`; this file only collects them.
 */
import type { CommandGroup } from '../common/cli.js';
import { packageVersion } from '../common/package-root.js';
import { versionCommand } from './version-command.js';

export const rootCommand: CommandGroup = {
  name: 'envext',
  summary: 'extend Envoy with WebAssembly and ext_proc, and attach extensions with EnvoyExtensionPolicy',
  subcommands: [versionCommand],
};

export const program = { root: rootCommand, version: packageVersion() };

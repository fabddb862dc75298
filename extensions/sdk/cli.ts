/**
 * `envext build` and `envext init filter`: the filter author's commands (issue 4).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { booleanOption, stringOption, type Command, type CommandGroup } from '../../common/cli.js';
import { EnvextError, UsageError } from '../../common/errors.js';
import { buildFilter, type GcRuntime } from './build.js';
import { initFilter } from './init.js';

const RUNTIMES: readonly GcRuntime[] = ['minimal', 'incremental'];

interface AsConfig {
  readonly entries?: unknown;
  readonly options?: { readonly runtime?: unknown };
  readonly targets?: { readonly release?: { readonly outFile?: unknown } };
}

/** Reads the defaults `envext build` takes from `asconfig.json` in `dir`, if there is one. */
function readAsConfig(dir: string): { entry?: string; outFile?: string; runtime?: string } {
  const file = join(dir, 'asconfig.json');
  if (!existsSync(file)) return {};
  let cfg: AsConfig;
  try {
    cfg = JSON.parse(readFileSync(file, 'utf8')) as AsConfig;
  } catch (e) {
    throw new EnvextError('SDK_ASCONFIG_INVALID', `${file} is not valid JSON`, {
      hint: 'fix the file or pass the entry explicitly: envext build assembly/index.ts',
      cause: e,
    });
  }
  const out: { entry?: string; outFile?: string; runtime?: string } = {};
  if (Array.isArray(cfg.entries) && typeof cfg.entries[0] === 'string') out.entry = cfg.entries[0];
  if (typeof cfg.targets?.release?.outFile === 'string') out.outFile = cfg.targets.release.outFile;
  if (typeof cfg.options?.runtime === 'string') out.runtime = cfg.options.runtime;
  return out;
}

export const buildCommand: Command = {
  name: 'build',
  summary: 'compile an AssemblyScript filter into a proxy-wasm module Envoy loads',
  description:
    'Compiles ENTRY (default: asconfig.json "entries"[0], else assembly/index.ts) with the SDK\'s\n' +
    'dispatcher, --exportStart _initialize and an abort that logs then traps; optimises; checks that\n' +
    'every import is one Envoy provides and that the ABI 0.2.1 marker and allocator are exported;\n' +
    'then writes OUT (default build/<project>.wasm) and prints its size.',
  positionals: [{ name: 'ENTRY', description: 'AssemblyScript entry file' }],
  options: {
    out: { type: 'string', short: 'o', valueName: 'OUT', description: 'output .wasm file' },
    runtime: {
      type: 'string',
      valueName: 'RUNTIME',
      description: 'garbage collector: minimal (SDK collects at quiet points) | incremental',
      defaultText: 'minimal',
    },
    debug: { type: 'boolean', description: 'no optimisation, keep names and debug info' },
    text: { type: 'boolean', description: 'also write the text format (.wat) next to OUT' },
    'all-exports': {
      type: 'boolean',
      description: 'export every proxy_on_* callback, not only those the sources override',
    },
    json: { type: 'boolean', description: 'print the result as JSON' },
  },
  examples: [
    'envext build',
    'envext build assembly/index.ts -o build/filter.wasm',
    'envext build --runtime incremental',
  ],
  async run(ctx) {
    const cwd = process.cwd();
    const cfg = readAsConfig(cwd);
    const entry = ctx.positionals[0] ?? cfg.entry ?? 'assembly/index.ts';
    const runtime = stringOption(ctx, 'runtime') ?? cfg.runtime ?? 'minimal';
    if (!RUNTIMES.includes(runtime as GcRuntime)) {
      throw new UsageError(`--runtime ${runtime} is not supported`, `use one of: ${RUNTIMES.join(', ')}`);
    }
    const outFile = stringOption(ctx, 'out') ?? (ctx.positionals[0] === undefined ? cfg.outFile : undefined);
    const result = await buildFilter({
      entry,
      ...(outFile === undefined ? {} : { outFile }),
      runtime: runtime as GcRuntime,
      debug: booleanOption(ctx, 'debug'),
      emitText: booleanOption(ctx, 'text'),
      allExports: booleanOption(ctx, 'all-exports'),
      cwd,
    });
    const out = relative(cwd, result.outFile) || result.outFile;
    if (booleanOption(ctx, 'json')) {
      ctx.stdout.write(
        JSON.stringify(
          {
            outFile: out,
            size: result.size,
            gzipSize: result.gzipSize,
            runtime: result.runtime,
            imports: result.imports,
            exports: result.exports,
          },
          null,
          2,
        ) + '\n',
      );
      return;
    }
    ctx.stdout.write(
      `built ${out}: ${result.size} bytes (${result.gzipSize} gzipped), runtime ${result.runtime}\n` +
        `imports (${result.imports.length}, all provided by Envoy): ${result.imports.join(', ') || 'none'}\n` +
        `callbacks exported: ${result.exports.filter((e) => e.startsWith('proxy_on_') || e === 'proxy_validate_configuration').length}\n`,
    );
  },
};

export const initFilterCommand: Command = {
  name: 'filter',
  summary: 'create a new AssemblyScript proxy-wasm filter project',
  description:
    'Writes NAME/ (or --dir) with package.json (depending on envext), asconfig.json, assembly/index.ts\n' +
    '(a header filter), a vitest test that drives the built .wasm through the host emulator,\n' +
    'README.md and envoy.yaml. Then: cd NAME && npm install && npm test.',
  positionals: [{ name: 'NAME', description: 'project name: lower-case letters, digits and dashes', required: true }],
  options: {
    dir: { type: 'string', valueName: 'DIR', description: 'target directory', defaultText: './NAME' },
    'envext-version': {
      type: 'string',
      valueName: 'SPEC',
      description: 'npm version spec for the envext dependency (e.g. file:../envext)',
      defaultText: '^<this version>',
    },
  },
  examples: ['envext init filter my-filter', 'envext init filter auth --dir filters/auth'],
  run(ctx) {
    const name = ctx.positionals[0] ?? '';
    const dir = resolve(stringOption(ctx, 'dir') ?? name);
    const envextSpec = stringOption(ctx, 'envext-version');
    const files = initFilter({ name, dir, ...(envextSpec === undefined ? {} : { envextSpec }) });
    const rel = relative(process.cwd(), dir) || '.';
    ctx.stdout.write(
      `created ${rel}/ (${files.length} files): ${files.join(', ')}\n` + `next: cd ${rel} && npm install && npm test\n`,
    );
  },
};

export const initCommand: CommandGroup = {
  name: 'init',
  summary: 'create new projects (filters)',
  subcommands: [initFilterCommand],
};

/**
 * Types for the parts of the JS WebAssembly API the host uses. The project compiles without the
 * DOM lib and `@types/node` 20 does not declare the `WebAssembly` global, so the host declares
 * what it needs here (module-local, so it cannot clash with another folder's declarations).
 */

export interface WasmModuleDescriptor {
  readonly module?: string;
  readonly name: string;
  readonly kind: 'function' | 'table' | 'memory' | 'global' | 'tag';
}

/** An opaque compiled module (`WebAssembly.Module`). */
export interface CompiledModule {
  readonly __compiledWasmModule?: never;
}

export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

export type WasmExportValue = ((...args: never[]) => unknown) | WasmMemory | object;

export interface WasmInstance {
  readonly exports: Readonly<Record<string, WasmExportValue>>;
}

export type ImportFunction = (...args: never[]) => unknown;
export type ImportObject = Record<string, Record<string, ImportFunction>>;

interface WebAssemblyApi {
  Module: {
    new (bytes: Uint8Array): CompiledModule;
    imports(m: CompiledModule): { module: string; name: string; kind: WasmModuleDescriptor['kind'] }[];
    exports(m: CompiledModule): { name: string; kind: WasmModuleDescriptor['kind'] }[];
  };
  Instance: new (m: CompiledModule, imports: ImportObject) => WasmInstance;
  Memory: abstract new (...args: never[]) => WasmMemory;
  compile(bytes: Uint8Array): Promise<CompiledModule>;
  RuntimeError: abstract new (...args: never[]) => Error;
  CompileError: abstract new (...args: never[]) => Error;
  LinkError: abstract new (...args: never[]) => Error;
}

/** The `WebAssembly` global, typed. */
export const WA: WebAssemblyApi = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

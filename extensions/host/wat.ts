/**
 * Compiles WebAssembly text (WAT) to a binary with the `wabt` package, so tests, examples and
 * `envext wasm run file.wat` can use hand-written modules without a separate build step.
 */
import wabtInit from 'wabt';
import { EnvextError } from '../../common/errors.js';

type Wabt = Awaited<ReturnType<typeof wabtInit>>;
let wabt: Promise<Wabt> | undefined;

/** Compiles WAT text; `file` names the source in error messages. */
export async function compileWat(text: string, file = 'module.wat'): Promise<Uint8Array> {
  wabt ??= wabtInit();
  const w = await wabt;
  let mod: ReturnType<Wabt['parseWat']> | undefined;
  try {
    mod = w.parseWat(file, text, { multi_value: true, bulk_memory: true, sign_extension: true, mutable_globals: true });
    mod.resolveNames();
    mod.validate();
    return new Uint8Array(mod.toBinary({}).buffer);
  } catch (e) {
    throw new EnvextError('WASM_WAT_INVALID', `${file}: ${(e as Error).message.trim()}`, {
      hint: 'fix the WebAssembly text; the message gives the line and column',
    });
  } finally {
    mod?.destroy();
  }
}

// The module's `abort` (wired with `--use abort=…` by `envext build`): AssemblyScript calls it
// on failed assertions, out-of-bounds access and `throw`. Envoy has no `env.abort`, and its
// `proc_exit` only logs and returns (reference §1.4), so we log at critical level and trap.
// Envoy then marks the VM failed and applies the plugin's failure policy.
import { proxy_log } from './abi/env';
import { decimal } from './util';

export function abort(
  message: string | null = null,
  fileName: string | null = null,
  line: u32 = 0,
  column: u32 = 0,
): void {
  let text = 'abort: ' + (message == null ? '(no message)' : message);
  if (fileName != null) text += ' at ' + fileName + ':' + decimal(line) + ':' + decimal(column);
  const buf = String.UTF8.encode(text);
  proxy_log(5, changetype<usize>(buf), buf.byteLength);
  unreachable();
}

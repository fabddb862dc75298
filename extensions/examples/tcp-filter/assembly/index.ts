// tcp-filter: a network filter that counts bytes in each direction and closes the connection
// when the client sends a configured pattern.
//
// Configuration (JSON): { "close_on": "QUIT\r\n" }   // optional; empty = never close
// Metrics: counters `envext_tcp_downstream_bytes`, `envext_tcp_upstream_bytes`,
// `envext_tcp_closed_on_pattern`; at connection end an info log with both totals.
import {
  Counter,
  FilterStatus,
  PeerType,
  RootContext,
  StreamContext,
  decimal,
  logError,
  logInfo,
  registerRootContext,
} from 'envext/assembly';
import { jsonError, parseJsonObject } from 'envext/assembly/json';

class TcpRoot extends RootContext {
  closeOn: string = '';
  readonly downstreamBytes: Counter = new Counter('envext_tcp_downstream_bytes');
  readonly upstreamBytes: Counter = new Counter('envext_tcp_upstream_bytes');
  readonly closedOnPattern: Counter = new Counter('envext_tcp_closed_on_pattern');

  onConfigure(size: usize): bool {
    const cfg = parseJsonObject(this.getPluginConfigurationString());
    if (cfg == null) {
      logError('tcp-filter: configuration must be a JSON object: ' + jsonError());
      return false;
    }
    this.closeOn = cfg.getString('close_on', '')!;
    return true;
  }

  createStreamContext(id: u32): StreamContext | null {
    return new ByteCounter(id, this);
  }
}

class ByteCounter extends StreamContext {
  down: u64 = 0;
  up: u64 = 0;
  /** Tail of the previous chunk, so a pattern split across two reads is still found. */
  carry: string = '';

  onDownstreamData(dataSize: usize, endOfStream: bool): FilterStatus {
    const cfg = changetype<TcpRoot>(this.root);
    if (dataSize > 0) {
      this.down += dataSize;
      cfg.downstreamBytes.increment(<i64>dataSize);
    }
    const pattern = cfg.closeOn;
    if (pattern.length > 0 && dataSize > 0) {
      const data = this.getDownstreamDataString(0, <u32>dataSize);
      if (data != null) {
        const window = this.carry + data;
        if (window.includes(pattern)) {
          cfg.closedOnPattern.increment();
          logInfo('tcp-filter: closing connection on pattern after ' + decimal(this.down) + ' bytes');
          this.closeDownstream();
          return FilterStatus.StopIteration;
        }
        const keep = pattern.length - 1;
        this.carry = window.length > keep ? window.substring(window.length - keep) : window;
      }
    }
    return FilterStatus.Continue;
  }

  onUpstreamData(dataSize: usize, endOfStream: bool): FilterStatus {
    if (dataSize > 0) {
      this.up += dataSize;
      changetype<TcpRoot>(this.root).upstreamBytes.increment(<i64>dataSize);
    }
    return FilterStatus.Continue;
  }

  onDownstreamConnectionClose(peer: PeerType): void {
    logInfo(
      'tcp-filter: connection closed by ' +
        (peer == PeerType.Local ? 'proxy' : 'client') +
        '; downstream ' +
        decimal(this.down) +
        ' bytes, upstream ' +
        decimal(this.up) +
        ' bytes',
    );
  }
}

registerRootContext((id: u32): RootContext => new TcpRoot(id));

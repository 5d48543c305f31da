/** Human-readable one-line renderings of frames, for debug logs (`spoa -d`). */
import type { Frame, KvEntry, TypedData } from './types.js';

/** A typed value as short text for logs (`str:"abc"`, `ipv4:192.0.2.1`...). */
export function formatTypedData(d: TypedData): string {
  switch (d.type) {
    case 'null':
      return 'null';
    case 'str':
      return `str:${JSON.stringify(d.value)}`;
    case 'bin':
      return `bin:<${Buffer.from(d.value.buffer, d.value.byteOffset, d.value.byteLength).toString('hex')}>`;
    default:
      return `${d.type}:${String(d.value)}`;
  }
}

const kvText = (kv: readonly KvEntry[]): string => kv.map(([k, v]) => `${k}=${formatTypedData(v)}`).join(' ');

/** A frame as one line of text for logs and debugging. */
export function formatFrame(f: Frame): string {
  const head = `${f.type.toUpperCase()} flags=0x${f.flags.toString(16).padStart(8, '0')} sid=${f.streamId} fid=${f.frameId}`;
  switch (f.type) {
    case 'haproxy-hello':
    case 'agent-hello':
    case 'haproxy-disconnect':
    case 'agent-disconnect':
      return `${head} ${kvText(f.kv)}`;
    case 'notify':
      return `${head} ${f.messages
        .map((m) => `${m.name}(${m.args.map((a) => (a.name ? `${a.name}=` : '') + formatTypedData(a.value)).join(', ')})`)
        .join(' ')}`;
    case 'ack':
      return `${head} ${
        f.actions
          .map((a) => (a.type === 'set-var' ? `set-var ${a.scope}.${a.name}=${formatTypedData(a.value)}` : `unset-var ${a.scope}.${a.name}`))
          .join('; ') || '(no actions)'
      }`;
    case 'raw':
      return `${head} type=${f.typeId} payload=${f.payload.length} bytes`;
  }
}

/**
 * The Host header check against DNS rebinding: a web page whose name an attacker points at 127.0.0.1
 * reaches this server from the operator's browser as the same origin, with Host the attacker's name.
 * Accepted: the address the server is bound to (IPv6 in brackets), any loopback address when bound to
 * loopback, any address literal when bound to every address (an address names itself: no rebinding
 * without a name), `localhost`, and the names configured in `admin.allowed-hosts`. The port part is
 * not compared: a proxy or a port mapping may change it. A request without Host (HTTP/1.0) is not a
 * browser's, and passes.
 */
import { formatAddress, isLoopbackAddress, parseAddress, unmapIPv4 } from '../net/address.js';

/** Host header: `name`, `a.b.c.d` or `[v6]`, then an optional `:port`. */
const HOST_HEADER = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9._-]+))(?::\d{1,5})?$/;

export class HostCheck {
  readonly #bound: Uint8Array | undefined;
  readonly #names: ReadonlySet<string>;

  /** `boundAddress`: the address the server listens on, as `server.address()` gives it. */
  constructor(boundAddress: string, allowedNames: readonly string[] = []) {
    const bound = parseAddress(boundAddress);
    this.#bound = bound === undefined ? undefined : unmapIPv4(bound);
    this.#names = new Set(['localhost', ...allowedNames.map(normalName)]);
  }

  /** Whether a request with this Host header may be served. */
  allows(host: string | undefined): boolean {
    if (host === undefined) return true;
    const match = HOST_HEADER.exec(host.toLowerCase());
    if (match === null) return false;
    const [, v6, name] = match;
    if (v6 !== undefined) {
      const bytes = parseAddress(v6);
      return bytes !== undefined && bytes.length === 16 && this.#addressAllowed(bytes);
    }
    const text = normalName(name as string);
    const v4 = /^[0-9.]+$/.test(text) ? parseAddress(text) : undefined;
    // Only the dotted-quad form: `127.1` or `2130706433` are names no browser sends as such.
    if (v4 !== undefined && v4.length === 4 && formatAddress(v4) === text) return this.#addressAllowed(v4);
    return this.#names.has(text);
  }

  #addressAllowed(bytes: Uint8Array): boolean {
    const address = unmapIPv4(bytes);
    const bound = this.#bound;
    if (bound === undefined) return false;
    if (bound.every((b) => b === 0)) return true;
    if (isLoopbackAddress(bound)) return isLoopbackAddress(address);
    return address.length === bound.length && address.every((b, i) => b === bound[i]);
  }
}

/** `Example.ORG.` -> `example.org`: DNS names are case-insensitive, and a final dot names the same host. */
function normalName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

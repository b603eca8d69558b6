/**
 * How many device sockets a listener task holds, in all and per client address. A socket takes
 * its place on the task when accepted, and its place at its address once the address is known
 * (at once, or after the PROXY protocol header); it gives both back when it closes.
 */
export interface ConnectionCapLimits {
  /** Sockets the task holds at once, on all its doors. */
  readonly maxConnections: number;
  /** Sockets from one client address at once. */
  readonly maxConnectionsPerAddress: number;
}

export class ConnectionCaps {
  private total = 0;
  private readonly byAddress = new Map<string, number>();

  constructor(private readonly limits: ConnectionCapLimits) {}

  get open(): number {
    return this.total;
  }

  /** A place on the task; false when it is full. */
  enterTask(): boolean {
    if (this.total >= this.limits.maxConnections) return false;
    this.total++;
    return true;
  }

  /** A place at `address`; false when that address holds its most. */
  enterAddress(address: string): boolean {
    const count = this.byAddress.get(address) ?? 0;
    if (count >= this.limits.maxConnectionsPerAddress) return false;
    this.byAddress.set(address, count + 1);
    return true;
  }

  /** A socket closed: its place on the task, and at `address` if it had one there. */
  leave(address: string | undefined): void {
    this.total--;
    if (address === undefined) return;
    const count = this.byAddress.get(address)! - 1;
    if (count > 0) this.byAddress.set(address, count);
    else this.byAddress.delete(address);
  }
}

/** `::ffff:192.0.2.1` (an IPv4 client on a dual-stack socket) counts as `192.0.2.1`. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice('::ffff:'.length) : address;
}

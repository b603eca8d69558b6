/**
 * Pacing of CONNECTs: a listener task hands at most `limit` connections' CONNECT batches to the
 * packet handler at once; the rest wait, in arrival order, and go to the batcher as earlier ones
 * are answered. A connect storm (a fleet reconnecting after an outage) then reaches DynamoDB at
 * the rate it is served, instead of all at once with each call waiting on the others until they
 * time out and the clients are refused. Other batches (of connections already connected) are
 * never held.
 */
import type { ConnectionPackets, PacketSubmitter } from './batcher';
import type { ConnectionAnswer } from './events';

const CONNECT_TYPE = 1;

export class ConnectPacing implements PacketSubmitter {
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly batcher: PacketSubmitter,
    private readonly limit: number,
  ) {}

  get maxEntryBytes(): number {
    return this.batcher.maxEntryBytes;
  }

  /** CONNECT batches waiting for their turn. */
  get queued(): number {
    return this.waiting.length;
  }

  nextSequence(): number {
    return this.batcher.nextSequence();
  }

  async submit(packets: ConnectionPackets): Promise<ConnectionAnswer> {
    if (!startsWithConnect(packets.packets)) return this.batcher.submit(packets);
    if (this.inFlight >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.inFlight++;
    try {
      return await this.batcher.submit(packets);
    } finally {
      // The slot passes straight to the next in line (so none overtakes it).
      const next = this.waiting.shift();
      if (next) next();
      else this.inFlight--;
    }
  }
}

/** A batch whose first packet is a CONNECT: the first batch of a connection. */
function startsWithConnect(packets: readonly Buffer[]): boolean {
  const first = packets[0];
  return first !== undefined && first.length > 0 && first[0]! >> 4 === CONNECT_TYPE;
}

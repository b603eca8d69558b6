/**
 * Pacing of CONNECTs: a listener task hands at most `limit` connections' CONNECT batches to the
 * packet handler at once; the rest wait, in arrival order, and go as earlier ones are answered. A
 * connect storm (a fleet reconnecting after an outage) then reaches DynamoDB at the rate it is
 * served, instead of all at once with each call waiting on the others until they time out and
 * the clients are refused. Other batches (of connections already connected) are never held.
 */
import type { ListenerEvent, PacketSink } from './events';

const CONNECT_TYPE = 1;

export class ConnectPacing implements PacketSink {
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly sink: PacketSink,
    private readonly limit: number,
  ) {}

  /** CONNECT batches waiting for their turn. */
  get queued(): number {
    return this.waiting.length;
  }

  async invoke(event: ListenerEvent): Promise<void> {
    if (!startsWithConnect(event)) return this.sink.invoke(event);
    if (this.inFlight >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.inFlight++;
    try {
      await this.sink.invoke(event);
    } finally {
      // The slot passes straight to the next in line (so none overtakes it).
      const next = this.waiting.shift();
      if (next) next();
      else this.inFlight--;
    }
  }
}

/** A batch whose first packet is a CONNECT: the first batch of a connection. */
function startsWithConnect(event: ListenerEvent): boolean {
  if (event.type !== 'packets' || event.packets.length === 0) return false;
  const first = Buffer.from(event.packets[0]!.slice(0, 4), 'base64');
  return first.length > 0 && first[0]! >> 4 === CONNECT_TYPE;
}

/**
 * One device connection on the listener: frames its byte stream into packets, and hands them to
 * the packet handler with one invocation in flight at a time; packets that arrive meanwhile go
 * in the next batch, in order. Enforces the keep-alive (1.5x the CONNECT's value,
 * [MQTT-3.1.2-22]) and a deadline for the CONNECT itself. A client that sends faster than the
 * handler keeps up is not read from until its queue drains (TCP backpressure), so a flood costs
 * the listener a bounded amount of memory.
 */
import { decodePacket } from '../protocol/codec';
import { MqttProtocolError, ReasonCode } from '../protocol/reason-codes';
import type { Logger } from '../broker/ports';
import type { PacketSink } from './events';
import { MqttFramer } from '../protocol/framer';

/** The two transports a device may use: a TCP socket, or a WebSocket with binary frames. */
export interface Transport {
  write(bytes: Buffer): void;
  /** Close the network connection; the transport reports it through `onClose`. */
  close(): void;
  readonly remoteAddress: string;
  /** Stop and restart reading (backpressure). */
  pause?(): void;
  resume?(): void;
}

export interface ConnectionLimits {
  readonly maximumPacketSize: number;
  readonly connectTimeoutMs: number;
  /** Most packets handed to one invocation. */
  readonly maxBatchPackets: number;
  /** Bytes of framed packets waiting for the handler before the listener stops reading the socket. */
  readonly maxQueuedBytes: number;
}

const CONNECT_TYPE = 1;

export class ClientConnection {
  readonly connectedAt = new Date();
  lastActiveAt = new Date();
  private readonly framer: MqttFramer;
  private readonly queue: Buffer[] = [];
  private pumping = false;
  private networkClosed = false;
  private closeReason = 'client closed';
  private serverClosed = false;
  private closedReported = false;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private keepAliveMs = 0;
  private sawConnect = false;
  private queuedBytes = 0;
  private paused = false;
  /** The stream could not be framed; the handler is told once the packets before it are handled. */
  private failure: { reasonCode: number; reason: string } | undefined;
  private markDone: () => void = () => undefined;
  /** Settles once the handler has been told the connection closed (or failed to be told). */
  readonly done: Promise<void> = new Promise((resolve) => (this.markDone = resolve));

  constructor(
    readonly connectionId: string,
    private readonly transport: Transport,
    private readonly sink: PacketSink,
    private readonly limits: ConnectionLimits,
    private readonly log: Logger,
    private readonly onGone: (connection: ClientConnection) => void,
  ) {
    this.framer = new MqttFramer(limits.maximumPacketSize);
    this.keepAliveTimer = setTimeout(() => this.serverClose('no CONNECT in time'), limits.connectTimeoutMs);
  }

  get remoteAddress(): string {
    return this.transport.remoteAddress;
  }

  /** Bytes from the network. */
  receive(chunk: Buffer): void {
    if (this.serverClosed || this.failure) return;
    let packets: Buffer[];
    try {
      packets = this.framer.push(chunk);
    } catch (error) {
      const reason = error instanceof MqttProtocolError ? error.message : String(error);
      const reasonCode = error instanceof MqttProtocolError ? error.reasonCode : ReasonCode.MalformedPacket;
      this.log.warn('closing connection: bad framing', { connectionId: this.connectionId, reason, reasonCode });
      this.failure = { reasonCode, reason };
      clearTimeout(this.keepAliveTimer);
      void this.pump();
      return;
    }
    if (packets.length === 0) return;
    this.lastActiveAt = new Date();
    if (!this.sawConnect) this.readKeepAlive(packets[0]!);
    this.armKeepAlive();
    this.queue.push(...packets);
    this.queuedBytes += packets.reduce((sum, p) => sum + p.length, 0);
    if (this.queuedBytes >= this.limits.maxQueuedBytes && !this.paused && this.transport.pause) {
      this.paused = true;
      this.transport.pause();
    }
    void this.pump();
  }

  /** Bytes to the network, from the delivery endpoint. */
  deliver(bytes: Buffer): void {
    this.transport.write(bytes);
  }

  /** The handler (or the listener itself) closes the connection; queued packets are dropped. */
  serverClose(reason: string): void {
    if (this.serverClosed) return;
    this.serverClosed = true;
    this.closeReason = reason;
    this.queue.length = 0;
    this.transport.close();
  }

  /** The transport reports the network connection closed (by either side). */
  networkClosedBy(reason: string): void {
    if (this.networkClosed) return;
    this.networkClosed = true;
    if (!this.serverClosed) this.closeReason = reason;
    clearTimeout(this.keepAliveTimer);
    this.onGone(this);
    // Packets already received are still handled (a client may PUBLISH, DISCONNECT and close at once).
    if (!this.pumping) void this.reportClosed();
  }

  private readKeepAlive(first: Buffer): void {
    this.sawConnect = true;
    if (first[0]! >> 4 !== CONNECT_TYPE) return; // the handler refuses it
    try {
      const connect = decodePacket(first);
      this.keepAliveMs = connect.cmd === 'connect' ? (connect.keepalive ?? 0) * 1000 * 1.5 : 0;
    } catch {
      this.keepAliveMs = 0; // malformed: the handler will close it
    }
  }

  private armKeepAlive(): void {
    clearTimeout(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
    if (this.keepAliveMs > 0) {
      this.keepAliveTimer = setTimeout(() => this.serverClose('keep-alive timeout'), this.keepAliveMs);
    }
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.serverClosed) {
        const batch = this.queue.splice(0, this.limits.maxBatchPackets);
        this.queuedBytes -= batch.reduce((sum, p) => sum + p.length, 0);
        try {
          await this.sink.invoke({ type: 'packets', connectionId: this.connectionId, packets: batch.map((p) => p.toString('base64')) });
        } catch (error) {
          // The handler could not take these packets: closing is the honest answer (the client
          // resends unacknowledged QoS 1/2 messages when it reconnects).
          this.log.error('packet handler failed; closing connection', { connectionId: this.connectionId, error: String(error) });
          this.serverClose('handler failed');
        }
        if (this.paused && this.queuedBytes < this.limits.maxQueuedBytes / 2) {
          this.paused = false;
          this.transport.resume?.();
        }
      }
      if (this.failure && !this.serverClosed) await this.reportFailure(this.failure);
    } finally {
      this.pumping = false;
    }
    if (this.networkClosed) await this.reportClosed();
  }

  /** The handler closes the connection with the reason (5.0: DISCONNECT first, once CONNACK went out). */
  private async reportFailure(failure: { reasonCode: number; reason: string }): Promise<void> {
    try {
      await this.sink.invoke({ type: 'failed', connectionId: this.connectionId, ...failure });
    } catch (error) {
      this.log.error('failure handler failed', { connectionId: this.connectionId, error: String(error) });
    }
    this.serverClose(`framing: ${failure.reason}`);
  }

  private async reportClosed(): Promise<void> {
    if (this.closedReported) return;
    this.closedReported = true;
    try {
      await this.sink.invoke({ type: 'closed', connectionId: this.connectionId, reason: this.closeReason });
    } catch (error) {
      this.log.error('close handler failed', { connectionId: this.connectionId, error: String(error) });
    } finally {
      this.markDone();
    }
  }
}

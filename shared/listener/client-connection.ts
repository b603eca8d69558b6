/**
 * One device connection on the listener: frames its byte stream into packets, and hands them to
 * the packet handler with one invocation in flight at a time; packets that arrive meanwhile go
 * in the next batch, in order. Enforces the keep-alive (1.5x the CONNECT's value, or the Server
 * Keep Alive the broker gives a 5.0 client, [MQTT-3.1.2-22]) and a deadline for the CONNECT itself.
 */
import { serverKeepAlive } from '../broker/keep-alive';
import { decodePacket, encodePacket, type ProtocolVersion } from '../protocol/codec';
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
}

export interface ConnectionLimits {
  readonly maximumPacketSize: number;
  readonly connectTimeoutMs: number;
  /** Most packets handed to one invocation. */
  readonly maxBatchPackets: number;
  /** The longest keep-alive this door carries (seconds); the broker's BrokerConfig.keepAliveLimit.listener. */
  readonly keepAliveLimit: number;
}

const CONNECT_TYPE = 1;
const CONNACK_TYPE = 2;

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
  /** The broker's first bytes to a client are its CONNACK. */
  private connackSent = false;
  private protocolVersion: ProtocolVersion = 4;
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
    if (this.serverClosed) return;
    let packets: Buffer[];
    try {
      packets = this.framer.push(chunk);
    } catch (error) {
      const reason = error instanceof MqttProtocolError ? error.message : String(error);
      this.log.warn('closing connection: bad framing', { connectionId: this.connectionId, reason });
      // 5.0: the client learns why (0x95 Packet too large, MQTT 5.0 3.2.2.3.6), never before its CONNACK [MQTT-3.14.0-1]
      if (this.protocolVersion === 5 && this.connackSent && error instanceof MqttProtocolError) {
        this.transport.write(encodePacket({ cmd: 'disconnect', reasonCode: error.reasonCode }, 5));
      }
      this.serverClose(`framing: ${reason}`);
      return;
    }
    if (packets.length === 0) return;
    this.lastActiveAt = new Date();
    if (!this.sawConnect) this.readKeepAlive(packets[0]!);
    this.armKeepAlive();
    this.queue.push(...packets);
    void this.pump();
  }

  /** Bytes to the network, from the delivery endpoint. */
  deliver(bytes: Buffer): void {
    if (bytes[0]! >> 4 === CONNACK_TYPE) this.connackSent = true;
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
      if (connect.cmd !== 'connect') return;
      this.protocolVersion = (connect.protocolVersion ?? 4) as ProtocolVersion;
      const requested = connect.keepalive ?? 0;
      // The same rule the CONNECT handler uses to answer with Server Keep Alive.
      const keepAlive = serverKeepAlive(this.protocolVersion, requested, this.limits.keepAliveLimit) ?? requested;
      this.keepAliveMs = keepAlive * 1000 * 1.5;
    } catch {
      this.keepAliveMs = 0; // malformed: the handler will close it
    }
  }

  private armKeepAlive(): void {
    clearTimeout(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
    if (this.keepAliveMs > 0) {
      this.keepAliveTimer = setTimeout(() => {
        // 5.0: the client learns why (0x8D Keep Alive timeout) before the connection closes
        if (this.protocolVersion === 5) this.transport.write(encodePacket({ cmd: 'disconnect', reasonCode: ReasonCode.KeepAliveTimeout }, 5));
        this.serverClose('keep-alive timeout');
      }, this.keepAliveMs);
    }
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.serverClosed) {
        const batch = this.queue.splice(0, this.limits.maxBatchPackets);
        try {
          await this.sink.invoke({ type: 'packets', connectionId: this.connectionId, packets: batch.map((p) => p.toString('base64')) });
        } catch (error) {
          // The handler could not take these packets: closing is the honest answer (the client
          // resends unacknowledged QoS 1/2 messages when it reconnects).
          this.log.error('packet handler failed; closing connection', { connectionId: this.connectionId, error: String(error) });
          this.serverClose('handler failed');
        }
      }
    } finally {
      this.pumping = false;
    }
    if (this.networkClosed) await this.reportClosed();
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

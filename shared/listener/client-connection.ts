/**
 * One device connection on the listener: frames its byte stream into packets, and hands them to
 * the packet handler with one invocation in flight at a time; packets that arrive meanwhile go
 * in the next batch, in order. Enforces the keep-alive (1.5x the CONNECT's value, or the Server
 * Keep Alive the broker gives a 5.0 client, or the broker's maximum a 3.1.1 client is held to,
 * [MQTT-3.1.2-22]) and a deadline for the CONNECT itself.
 * A client that sends faster than the handler keeps up is not read from until its queue drains
 * (TCP backpressure), so a flood costs the listener a bounded amount of memory. The other way, a
 * client that does not read what it is sent is closed once its unread bytes would pass a limit,
 * so a slow reader costs the task at most that much. Before its CONNECT, a socket may hold only a
 * small partial packet.
 */
import { heldKeepAlive } from '../broker/keep-alive';
import { decodePacket, encodePacket, type ProtocolVersion } from '../protocol/codec';
import { isAcceptingConnack } from '../protocol/fixed-header';
import { MqttProtocolError, ReasonCode } from '../protocol/reason-codes';
import type { Logger } from '../broker/ports';
import type { ConnectionState, PacketSink } from './events';
import { MqttFramer } from '../protocol/framer';
import { entryEventBytes, packetEventBytes, PacketBatcher, type PacketSubmitter } from './batcher';
import { ThrottleBackoff } from './throttle-backoff';
import { OutgoingAliases } from './outgoing-aliases';
import type { Transport } from './transport';
import type { ConnectionLimits } from './listener-options';

const CONNECT_TYPE = 1;
const DISCONNECT_TYPE = 14;
const HELD_CLOSE_MS = 2_000;
const PINGREQ_BYTE = 0xc0;
const PINGRESP = Buffer.from([0xd0, 0x00]);

export class ClientConnection {
  readonly connectedAt = new Date();
  lastActiveAt = new Date();
  private readonly framer: MqttFramer;
  private readonly queue: Buffer[] = [];
  /** Each queued packet's number in the order the task received packets (the batcher's counter). */
  private readonly sequences: number[] = [];
  private pumping = false;
  private networkClosed = false;
  private closeReason = 'client closed';
  private serverClosed = false;
  private closedReported = false;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private keepAliveMs = 0;
  private sawConnect = false;
  private protocolVersion: ProtocolVersion | undefined;
  /** The next entry handed to the batcher is the connection's first (it carries the CONNECT). */
  private firstEntry = true;
  /** The connection's record as the packet handler last answered it, sent back with the next packets (events.ts ConnectionState). */
  private state: ConnectionState | undefined;
  /** A DISCONNECT that arrived before this connection's CONNACK, and the close behind it. */
  private heldDisconnect: Buffer | undefined;
  /** 5.0, a client with a Topic Alias Maximum: the aliases of the PUBLISHes written to it. */
  private outgoingAliases: OutgoingAliases | undefined;
  private heldClose: { reason: string; timer: NodeJS.Timeout } | undefined;
  /** Whether the handler's first packet to this client, its CONNACK, accepted the connection. */
  private connackAccepted: boolean | undefined;
  private queuedBytes = 0;
  private paused = false;
  private readonly throttled = new ThrottleBackoff();
  /** The stream could not be framed; the handler is told once the packets before it are handled. */
  private failure: { reasonCode: number; reason: string } | undefined;
  /** The most bytes this connection's client had not yet taken, right after a write. */
  peakOutboundBytes = 0;
  /** Closed because its client stopped reading (its outbound bytes would have passed the limit). */
  closedAsSlowReader = false;
  private markDone: () => void = () => undefined;
  /** Settles once the handler has been told the connection closed (or failed to be told). */
  readonly done: Promise<void> = new Promise((resolve) => (this.markDone = resolve));
  private readonly batcher: PacketSubmitter;

  /** `batcher`: the task's one batcher; without it, this connection's packets go alone, one invocation per batch. */
  constructor(
    readonly connectionId: string,
    private readonly transport: Transport,
    private readonly sink: PacketSink,
    private readonly limits: ConnectionLimits,
    private readonly log: Logger,
    private readonly onGone: (connection: ClientConnection) => void,
    batcher?: PacketSubmitter,
  ) {
    this.batcher = batcher ?? new PacketBatcher(sink, { batchWindowMs: 0 }, log);
    this.framer = new MqttFramer(limits.maximumPacketSize, limits.maxConnectPacketSize);
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
      this.log.warn('closing connection: bad framing', { connectionId: this.connectionId, reason, reasonCode, beforeConnect: !this.sawConnect });
      // Nothing reached the handler yet, so the broker holds nothing for this socket: just close it.
      if (!this.sawConnect) return this.serverClose(`framing before CONNECT: ${reason}`);
      this.failure = { reasonCode, reason };
      clearTimeout(this.keepAliveTimer);
      void this.pump();
      return;
    }
    if (packets.length === 0) return;
    this.lastActiveAt = new Date();
    if (!this.sawConnect) this.readKeepAlive(packets[0]!);
    // The keep-alive counts the client's silence once it has its CONNACK: until then it is the
    // broker that is late (a loaded handler once took longer than a 1 s keep-alive's 1.5 s).
    if (this.connackAccepted !== undefined) this.armKeepAlive();
    // [MQTT-3.12.4-1] A PINGREQ on an accepted connection with nothing of it still to handle is
    // answered here: it changes no state (the keep-alive was just re-armed above), and an idle
    // device then costs no invocation. Behind packets not handled yet, it goes to the handler in
    // its place, so its PINGRESP still says that what the client sent before it was handled (a
    // client that sends PUBACK, waits for PINGRESP and disconnects is not resent that message).
    const forHandler: Buffer[] = [];
    for (const packet of packets) {
      const caughtUp = forHandler.length === 0 && !this.pumping && this.queue.length === 0;
      if (!(this.connackAccepted && caughtUp && this.answeredPing(packet))) forHandler.push(packet);
    }
    if (forHandler.length === 0) return;
    this.queue.push(...forHandler);
    for (let i = 0; i < forHandler.length; i++) this.sequences.push(this.batcher.nextSequence());
    this.queuedBytes += forHandler.reduce((sum, p) => sum + p.length, 0);
    if (this.queuedBytes >= this.limits.maxQueuedBytes && !this.paused && this.transport.pause) {
      this.paused = true;
      this.transport.pause();
    }
    void this.pump();
  }

  private answeredPing(packet: Buffer): boolean {
    if (packet.length !== 2 || packet[0] !== PINGREQ_BYTE || packet[1] !== 0) return false;
    this.write(PINGRESP);
    return true;
  }

  /**
   * Writes to the client, unless its unread bytes would then pass the limit: a client that does
   * not read is closed at once (no DISCONNECT: it could not get past the bytes ahead of it).
   */
  private write(bytes: Buffer): boolean {
    if (this.serverClosed || this.networkClosed) return false;
    const buffered = this.transport.bufferedBytes();
    if (buffered + bytes.length + this.transport.framingBytes > this.limits.maxOutboundBytes) {
      this.log.warn('closing connection: client is not reading', {
        connectionId: this.connectionId,
        unreadBytes: buffered,
        writeBytes: bytes.length,
        maxOutboundBytes: this.limits.maxOutboundBytes,
      });
      this.closedAsSlowReader = true;
      this.closeNow('client not reading: outbound bytes over the limit', undefined, true);
      return false;
    }
    this.transport.write(bytes);
    this.peakOutboundBytes = Math.max(this.peakOutboundBytes, this.transport.bufferedBytes());
    return true;
  }

  /**
   * Bytes to the network, from the delivery endpoint. [MQTT-3.14.0-1] no DISCONNECT before the
   * CONNACK: when a takeover's DISCONNECT (from another connection's handler) overtakes this
   * connection's own CONNACK (still on its way from this connection's handler), it is held, and
   * the close that follows it waits for the CONNACK (at most HELD_CLOSE_MS).
   * False when the connection is closed (or closes now, its client not reading): the bytes did
   * not go out, and the delivery endpoint answers as API Gateway does for a gone connection.
   */
  deliver(bytes: Buffer): boolean {
    if (this.serverClosed || this.networkClosed) return false;
    if (this.connackAccepted === undefined && bytes.length > 0 && bytes[0]! >> 4 === DISCONNECT_TYPE) {
      this.heldDisconnect = bytes;
      return true;
    }
    const first = this.connackAccepted === undefined;
    this.connackAccepted ??= isAcceptingConnack(bytes); // the first packet a server sends is CONNACK
    if (first && this.connackAccepted) this.armKeepAlive();
    if (!this.write(this.outgoingAliases?.rewrite(bytes) ?? bytes)) return false;
    if (!first || !this.heldDisconnect) return true;
    const held = this.heldDisconnect;
    this.heldDisconnect = undefined;
    if (!this.write(held)) return true;
    if (this.heldClose) {
      clearTimeout(this.heldClose.timer);
      const { reason } = this.heldClose;
      this.heldClose = undefined;
      this.serverClose(reason);
    }
    return true;
  }

  /** The handler (or the listener itself) closes the connection; queued packets are dropped. */
  serverClose(reason: string, lastBytes?: Buffer): void {
    if (this.serverClosed) return;
    if (this.heldDisconnect && this.connackAccepted === undefined && !lastBytes) {
      this.heldClose ??= {
        reason,
        timer: setTimeout(() => {
          this.heldClose = undefined;
          this.heldDisconnect = undefined;
          this.serverClose(reason);
        }, HELD_CLOSE_MS),
      };
      return;
    }
    this.closeNow(reason, lastBytes);
  }

  /** `abort`: a reset rather than a close, so not even the kernel keeps sending what a client does not read. */
  private closeNow(reason: string, lastBytes?: Buffer, abort = false): void {
    if (this.serverClosed) return;
    clearTimeout(this.heldClose?.timer);
    this.heldClose = undefined;
    this.serverClosed = true;
    this.closeReason = reason;
    this.queue.length = 0;
    this.sequences.length = 0;
    if (abort) return this.transport.abort();
    // Last words only when they fit within the outbound limit; else the connection just closes.
    const fits = lastBytes && this.transport.bufferedBytes() + lastBytes.length + this.transport.framingBytes <= this.limits.maxOutboundBytes;
    this.transport.close(fits ? lastBytes : undefined);
  }

  /**
   * The listener is shutting down, so the client should reconnect to another one. A 5.0 client
   * hears why first: DISCONNECT 0x8B (Server shutting down), but only once its CONNACK accepted
   * it ([MQTT-3.14.0-1]); then the connection closes ([MQTT-3.14.4-2]). 3.1.1 has no server
   * DISCONNECT: its connection just closes. Either way the close reaches the handler as usual.
   */
  shutdown(): void {
    const goodbye =
      this.protocolVersion === 5 && this.connackAccepted
        ? encodePacket({ cmd: 'disconnect', reasonCode: ReasonCode.ServerShuttingDown }, 5)
        : undefined;
    this.serverClose('server shutting down', goodbye);
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
      // The same rules the CONNECT handler uses to answer with Server Keep Alive.
      const keepAlive = heldKeepAlive(this.protocolVersion, requested, this.limits.keepAliveLimit, this.limits.maxKeepAlive);
      this.keepAliveMs = keepAlive * 1000 * 1.5;
      // 5.0: this connection's outgoing topic aliases are chosen here, where its bytes are written in order
      const aliasMaximum = this.protocolVersion === 5 ? (connect.properties?.topicAliasMaximum ?? 0) : 0;
      if (aliasMaximum > 0) this.outgoingAliases = new OutgoingAliases(aliasMaximum, connect.properties?.maximumPacketSize);
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
        const goodbye = this.protocolVersion === 5 ? encodePacket({ cmd: 'disconnect', reasonCode: ReasonCode.KeepAliveTimeout }, 5) : undefined;
        this.serverClose('keep-alive timeout', goodbye);
      }, this.keepAliveMs);
    }
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.serverClosed) {
        const batch = this.queue.splice(0, this.batchSize());
        const sequences = this.sequences.splice(0, batch.length);
        const bytes = batch.reduce((sum, p) => sum + p.length, 0);
        this.queuedBytes -= bytes;
        try {
          const { outcome, state } = await this.batcher.submit({
            connectionId: this.connectionId,
            packets: batch,
            sequences,
            ...(this.protocolVersion ? { protocolVersion: this.protocolVersion } : {}),
            // With the CONNECT only: the handler needs them to authenticate, and nothing after.
            ...(this.firstEntry ? { sourceAddress: this.remoteAddress } : {}),
            ...(this.firstEntry && this.transport.certificateUser !== undefined ? { certificateUser: this.transport.certificateUser } : {}),
            ...(this.firstEntry ? { first: true } : {}),
            ...(this.state ? { state: this.state } : {}),
          });
          this.firstEntry = false;
          if (state) this.state = state;
          this.throttled.reset();
          // The handler could not take this connection's packets (others in the same invocation may have been taken).
          if (outcome === 'failed') this.handlerFailed('the handler failed on its packets');
        } catch (error) {
          const wait = this.throttled.next(error);
          if (wait !== undefined) {
            if (this.throttled.first) this.log.warn('packet handler throttled; holding the connection\'s packets and trying again', { connectionId: this.connectionId });
            // Lambda refused the invocation before running it (over the account's concurrency,
            // after the Lambda client's own retries): nothing was handled. The packets go back to
            // the front of the queue, in order and with their numbers, and are offered again
            // after a wait; the socket is still read only while the queue is under its bound.
            this.queue.unshift(...batch);
            this.sequences.unshift(...sequences);
            this.queuedBytes += bytes;
            await new Promise((resolve) => setTimeout(resolve, wait));
            continue;
          }
          // The whole invocation failed: closing is the honest answer (the client resends
          // unacknowledged QoS 1/2 messages when it reconnects).
          this.handlerFailed(String(error));
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

  /** The most packets from the front of the queue that one invocation takes: by count, and by the bytes they add to its event (at least one). */
  private batchSize(): number {
    let bytes = entryEventBytes(this.connectionId, []);
    const most = Math.min(this.queue.length, this.limits.maxBatchPackets);
    for (let n = 0; n < most; n++) {
      bytes += packetEventBytes(this.queue[n]!.length);
      if (bytes > this.batcher.maxEntryBytes) return Math.max(n, 1);
    }
    return most;
  }

  private handlerFailed(error: string): void {
    this.log.error('packet handler failed; closing connection', { connectionId: this.connectionId, error });
    this.serverClose('handler failed');
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
    // No packet ever arrived (a load balancer's health check, a port scan): the broker holds
    // nothing for this connection, so there is nothing to tell it, and no invocation to pay for.
    if (!this.sawConnect) return this.markDone();
    try {
      // In a batch with other connections' packets and closes; throttled, offered again after the
      // same backoff as packets (a close not reported leaves the session attached and the will
      // unsent until the sweeper finds the connection gone).
      for (;;) {
        try {
          const { outcome } = await this.batcher.submit({
            connectionId: this.connectionId,
            packets: [],
            sequences: [],
            closed: this.closeReason,
          });
          if (outcome === 'failed') this.log.error('close handler failed', { connectionId: this.connectionId });
          return;
        } catch (error) {
          const wait = this.throttled.next(error);
          if (wait === undefined) throw error;
          if (this.throttled.first) this.log.warn('close handler throttled; reporting the close again', { connectionId: this.connectionId });
          await new Promise((resolve) => setTimeout(resolve, wait));
        }
      }
    } catch (error) {
      this.log.error('close handler failed', { connectionId: this.connectionId, error: String(error) });
    } finally {
      this.markDone();
    }
  }
}

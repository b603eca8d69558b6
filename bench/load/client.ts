/**
 * The load generator's MQTT client: a raw byte pipe and mqtt-packet, nothing else, so that
 * the generator spends its CPU on bytes rather than on a client library's bookkeeping. It
 * acknowledges what it receives at QoS 1 and 2 at once, and counts packets and bytes both ways.
 */
import { performance } from 'node:perf_hooks';
import mqttPacket, { type IPublishPacket, type Packet, type QoS } from 'mqtt-packet';
import { openPipe, type Endpoint, type Pipe } from './pipes';

export type { Endpoint } from './pipes';

export interface ConnectOptions {
  readonly clientId: string;
  readonly protocolVersion?: 4 | 5;
  /** 3.1.1 Clean Session / 5.0 Clean Start; default true. */
  readonly clean?: boolean;
  readonly keepalive?: number;
  /** 5.0 only: seconds the session outlives the connection. */
  readonly sessionExpiryInterval?: number;
  readonly timeoutMs?: number;
}

/** Called for every PUBLISH received, with the time its bytes arrived. */
export type MessageHandler = (packet: IPublishPacket, receivedAt: number) => void;

export interface TrafficCounters {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Reads from the pipe: TCP chunks, or WebSocket messages on the API Gateway door. */
  framesIn: number;
}

export class ConnectionRefused extends Error {
  override name = 'ConnectionRefused';

  /** The CONNACK's return code (3.1.1) or reason code (5.0). */
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

interface Waiter {
  resolve(packet: Packet): void;
  reject(error: Error): void;
}

const MAX_PACKET_ID = 0xffff;

export class BenchClient {
  onMessage: MessageHandler = () => undefined;
  /** Largest number of unacknowledged QoS 1/2 PUBLISHes the server accepts (5.0 Receive Maximum). */
  receiveMaximum = MAX_PACKET_ID;
  closed = false;
  closeReason = '';
  private readonly parser;
  private readonly waiters = new Map<string, Waiter>();
  private readonly inflight = new Set<number>();
  private nextPacketId = 1;
  private receivedAt = 0;
  private closeListeners: Array<() => void> = [];

  private constructor(
    private readonly pipe: Pipe,
    readonly clientId: string,
    readonly protocolVersion: 4 | 5,
    private readonly counters: TrafficCounters,
  ) {
    this.parser = mqttPacket.parser({ protocolVersion });
    this.parser.on('packet', (packet: Packet) => this.handle(packet));
    this.parser.on('error', (error: Error) => this.fail(`unparsable bytes from the broker: ${error.message}`));
    pipe.onData = (chunk) => {
      counters.framesIn += 1;
      counters.bytesIn += chunk.length;
      this.receivedAt = performance.now();
      // acknowledgements of everything in this chunk leave in one write
      pipe.cork();
      this.parser.parse(chunk);
      pipe.uncork();
    };
    pipe.onClose = (reason) => this.fail(reason);
  }

  /** Opens a TCP connection and completes the CONNECT/CONNACK exchange. */
  static async connect(endpoint: Endpoint, options: ConnectOptions, counters: TrafficCounters): Promise<BenchClient> {
    const protocolVersion = options.protocolVersion ?? 4;
    const pipe = await openPipe(endpoint, options.timeoutMs ?? 10_000);
    const client = new BenchClient(pipe, options.clientId, protocolVersion, counters);
    const connack = await client.request('connack', undefined, options.timeoutMs ?? 10_000, {
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion,
      clientId: options.clientId,
      clean: options.clean ?? true,
      keepalive: options.keepalive ?? 0,
      ...(protocolVersion === 5 && options.sessionExpiryInterval !== undefined
        ? { properties: { sessionExpiryInterval: options.sessionExpiryInterval } }
        : {}),
    });
    if (connack.cmd !== 'connack') throw new Error('expected CONNACK');
    const code = protocolVersion === 5 ? connack.reasonCode : connack.returnCode;
    if (code !== 0) {
      client.destroy();
      throw new ConnectionRefused(`CONNACK refused ${options.clientId} with code ${code}`, code ?? -1);
    }
    client.receiveMaximum = connack.properties?.receiveMaximum ?? MAX_PACKET_ID;
    return client;
  }

  /** SUBSCRIBE and wait for SUBACK; returns the granted QoS (or reason code) per filter. */
  async subscribe(filters: ReadonlyArray<{ topic: string; qos: QoS }>, timeoutMs = 30_000): Promise<number[]> {
    const messageId = this.allocatePacketId();
    try {
      const suback = await this.request('suback', messageId, timeoutMs, { cmd: 'subscribe', messageId, subscriptions: filters.map((f) => ({ ...f })) });
      return suback.cmd === 'suback' ? suback.granted.map((g) => (typeof g === 'number' ? g : 0x80)) : [];
    } finally {
      this.inflight.delete(messageId);
    }
  }

  /**
   * PUBLISH. QoS 0 resolves once written; QoS 1 on PUBACK; QoS 2 on PUBCOMP. The caller keeps
   * within `receiveMaximum` unacknowledged messages (see `unacknowledged`).
   */
  publish(topic: string, payload: Buffer, qos: QoS, retain = false): Promise<void> {
    if (qos === 0) {
      this.write({ cmd: 'publish', topic, payload, qos, retain, dup: false });
      return Promise.resolve();
    }
    const messageId = this.allocatePacketId();
    const done = this.request(qos === 1 ? 'puback' : 'pubcomp', messageId, 0, { cmd: 'publish', topic, payload, qos, retain, dup: false, messageId });
    return done.then(
      () => void this.inflight.delete(messageId),
      (error: Error) => {
        this.inflight.delete(messageId);
        throw error;
      },
    );
  }

  /** QoS 1/2 PUBLISHes sent and not yet acknowledged. */
  get unacknowledged(): number {
    return this.inflight.size;
  }

  async ping(timeoutMs = 30_000): Promise<void> {
    await this.request('pingresp', undefined, timeoutMs, { cmd: 'pingreq' });
  }

  /** Writes several packets in one go (one system call, usually). */
  batch(send: () => void): void {
    this.pipe.cork();
    try {
      send();
    } finally {
      this.pipe.uncork();
    }
  }

  /** DISCONNECT, then wait (briefly) for the broker to close the socket. */
  async disconnect(timeoutMs = 5_000): Promise<void> {
    if (this.closed) return;
    const closed = new Promise<void>((resolve) => this.closeListeners.push(resolve));
    this.write({ cmd: 'disconnect' });
    this.pipe.end();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    this.destroy();
  }

  destroy(): void {
    this.pipe.destroy();
  }

  private write(packet: Packet): void {
    if (this.closed) return;
    const bytes = mqttPacket.generate(packet, { protocolVersion: this.protocolVersion });
    this.counters.packetsOut += 1;
    this.counters.bytesOut += bytes.length;
    this.pipe.write(bytes);
  }

  private request(answer: Packet['cmd'], messageId: number | undefined, timeoutMs: number, packet: Packet): Promise<Packet> {
    const key = `${answer}:${messageId ?? ''}`;
    return new Promise<Packet>((resolve, reject) => {
      if (this.closed) return reject(new Error(`${this.clientId}: ${this.closeReason}`));
      let timer: NodeJS.Timeout | undefined;
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          this.waiters.delete(key);
          reject(new Error(`${this.clientId}: no ${answer.toUpperCase()} within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.waiters.set(key, {
        resolve: (p) => (clearTimeout(timer), resolve(p)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.write(packet);
    });
  }

  private settle(answer: Packet['cmd'], messageId: number | undefined, packet: Packet): void {
    const key = `${answer}:${messageId ?? ''}`;
    const waiter = this.waiters.get(key);
    if (!waiter) return;
    this.waiters.delete(key);
    waiter.resolve(packet);
  }

  private handle(packet: Packet): void {
    this.counters.packetsIn += 1;
    switch (packet.cmd) {
      case 'publish':
        if (packet.qos === 1) this.write({ cmd: 'puback', messageId: packet.messageId! });
        else if (packet.qos === 2) this.write({ cmd: 'pubrec', messageId: packet.messageId! });
        this.onMessage(packet, this.receivedAt);
        return;
      case 'pubrel':
        this.write({ cmd: 'pubcomp', messageId: packet.messageId! });
        return;
      case 'pubrec':
        this.write({ cmd: 'pubrel', messageId: packet.messageId! });
        return;
      case 'disconnect':
        this.closeReason = `DISCONNECT from the broker, reason code ${packet.reasonCode ?? 0}`;
        return;
      case 'connack':
      case 'suback':
      case 'puback':
      case 'pubcomp':
      case 'pingresp':
      case 'unsuback':
        return this.settle(packet.cmd, packet.messageId, packet);
      default:
        return;
    }
  }

  private allocatePacketId(): number {
    for (let tries = 0; tries < MAX_PACKET_ID; tries++) {
      const id = this.nextPacketId;
      this.nextPacketId = id === MAX_PACKET_ID ? 1 : id + 1;
      if (!this.inflight.has(id)) {
        this.inflight.add(id);
        return id;
      }
    }
    throw new Error(`${this.clientId}: no free packet identifier`);
  }

  private fail(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.closeReason) this.closeReason = reason;
    const error = new Error(`${this.clientId}: ${this.closeReason}`);
    for (const waiter of this.waiters.values()) waiter.reject(error);
    this.waiters.clear();
    for (const listener of this.closeListeners.splice(0)) listener();
    this.pipe.destroy();
  }
}

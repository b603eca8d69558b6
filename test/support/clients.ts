/** Real clients for end-to-end tests: MQTT.js, and a raw socket that speaks mqtt-packet bytes. */
import net from 'node:net';
import mqtt, { MqttClient, type IClientOptions } from 'mqtt';
import { browserStreamBuilder } from 'mqtt/lib/connect/ws';
import mqttPacket, { type Packet } from 'mqtt-packet';
import WebSocket from 'ws';
import { apiGatewayWebsocket } from '../../web/adapter';

/** One way into the broker: a name for test titles, and the URL MQTT.js dials. */
export interface Door {
  readonly name: string;
  url(): string;
  /** A raw byte pipe to the broker on this door. */
  raw(protocolVersion: 4 | 5): Promise<RawConnection>;
  /** How MQTT.js connects on this door, when not by `mqtt.connect(url())`. */
  connect?(options: IClientOptions): Promise<MqttClient>;
  /** Whether the door closes a client silent for 1.5 times its keep-alive (false: the API Gateway door). */
  readonly enforcesKeepAlive?: boolean;
}

export interface ReceivedMessage {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
  dup: boolean;
  /** 5.0 PUBLISH properties, as MQTT.js decoded them. */
  properties?: Record<string, unknown>;
}

export async function connectClient(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  return whenConnected(mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10_000, protocolVersion: 4, ...options }));
}

/**
 * Stock MQTT.js through the API Gateway door with the browser adapter (web/adapter.ts), on the
 * `ws` package's WebSocket: the same MQTT.js stream builder and adapter code a browser runs.
 */
export async function connectThroughApiGateway(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  const { hostname, port } = new URL(url);
  const opts: IClientOptions = {
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    protocolVersion: 4,
    ...options,
    protocol: 'ws',
    hostname,
    port: Number(port),
    path: '/',
    createWebsocket: apiGatewayWebsocket({ WebSocket }),
  };
  return whenConnected(new MqttClient((client) => browserStreamBuilder(client, opts), opts));
}

/** Resolves once `client` has its CONNACK; rejects on an error or a close before it. */
export async function whenConnected(client: MqttClient): Promise<MqttClient> {
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
  return client;
}

/** Collects every message a client receives. */
export function collect(client: MqttClient): ReceivedMessage[] {
  const messages: ReceivedMessage[] = [];
  client.on('message', (topic, payload, packet) =>
    messages.push({
      topic,
      payload: payload.toString(),
      qos: packet.qos,
      retain: packet.retain,
      dup: packet.dup,
      ...(packet.properties ? { properties: packet.properties as Record<string, unknown> } : {}),
    }),
  );
  return messages;
}

/** Waits until `condition` holds, polling; fails with `what` after the timeout. */
export async function eventually(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Gives the broker time to deliver something that must NOT arrive. */
export function settle(ms = 500): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function endAll(...clients: Array<MqttClient | undefined>): Promise<void> {
  await Promise.all(clients.map((client) => client?.endAsync().catch(() => undefined)));
}

/** A raw MQTT connection: write packets (or any bytes) exactly, read decoded packets. */
export class RawConnection {
  readonly packets: Packet[] = [];
  closed = false;
  private readonly parser;

  constructor(
    private readonly writeBytes: (bytes: Buffer) => void,
    private readonly end: () => void,
    private readonly protocolVersion: 4 | 5,
  ) {
    this.parser = mqttPacket.parser({ protocolVersion });
    this.parser.on('packet', (packet: Packet) => this.packets.push(packet));
  }

  static tcp(port: number, protocolVersion: 4 | 5 = 4): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      const raw = new RawConnection((b) => socket.write(b), () => socket.destroy(), protocolVersion);
      socket.on('data', (chunk) => raw.receive(chunk));
      socket.on('close', () => (raw.closed = true));
      socket.once('connect', () => resolve(raw));
      socket.once('error', reject);
    });
  }

  static websocket(url: string, protocolVersion: 4 | 5 = 4): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, 'mqtt');
      const raw = new RawConnection((b) => ws.send(b), () => ws.terminate(), protocolVersion);
      ws.on('message', (data) => raw.receive(data as Buffer));
      ws.on('close', () => (raw.closed = true));
      ws.once('open', () => resolve(raw));
      ws.once('error', reject);
    });
  }

  /**
   * The API Gateway door as the browser adapter speaks it: each send() is one text message,
   * `<sequence>:<base64 of its packets>`, numbered 1, 2, 3...; `sequenced: false` leaves the
   * number out, as a client without the adapter would.
   */
  static apiGateway(url: string, protocolVersion: 4 | 5 = 4, options: { sequenced?: boolean } = {}): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, 'mqtt');
      let sequence = 0;
      const raw = new RawConnection(
        (b) => ws.send(options.sequenced === false ? b.toString('base64') : `${++sequence}:${b.toString('base64')}`),
        () => ws.terminate(),
        protocolVersion,
      );
      ws.on('message', (data) => raw.receive(Buffer.from(data.toString(), 'base64')));
      ws.on('close', (code) => {
        raw.closeCode = code;
        raw.closed = true;
      });
      ws.once('open', () => resolve(raw));
      ws.once('error', reject);
    });
  }

  /** The WebSocket close code, on a WebSocket door. */
  closeCode?: number;

  receive(chunk: Buffer): void {
    this.parser.parse(chunk);
  }

  /** Several packets in one write, back to back. */
  send(...packets: Packet[]): void {
    this.writeBytes(Buffer.concat(packets.map((p) => mqttPacket.generate(p, { protocolVersion: this.protocolVersion }))));
  }

  sendBytes(bytes: Buffer): void {
    this.writeBytes(bytes);
  }

  async next(cmd: Packet['cmd'], timeoutMs = 10_000): Promise<Packet> {
    await eventually(() => this.packets.some((p) => p.cmd === cmd), `${cmd}`, timeoutMs);
    const index = this.packets.findIndex((p) => p.cmd === cmd);
    return this.packets.splice(index, 1)[0]!;
  }

  async waitClosed(timeoutMs = 10_000): Promise<void> {
    await eventually(() => this.closed, 'the broker to close the connection', timeoutMs);
  }

  close(): void {
    this.end();
  }
}

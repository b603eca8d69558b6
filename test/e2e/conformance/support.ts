/**
 * What the conformance scenarios share: the doors and harness limits they run with, the clients
 * a test opens (closed when it finishes, through its own context), and helpers that read what a
 * client received.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { IConnackPacket, IConnectPacket, IDisconnectPacket, IPublishPacket } from 'mqtt-packet';
import type { TestContext } from 'vitest';
import type { Harness, HarnessOptions } from '../../../local/harness';
import { eventually, RawConnection, type Door } from '../../support/clients';

export type Version = 4 | 5;
export const VERSIONS: readonly Version[] = [4, 5];
export const versionName = (version: Version): string => (version === 5 ? 'MQTT 5.0' : 'MQTT 3.1.1');

/**
 * The doors of one transport: `main` on the file's harness, `other` the listener's other
 * transport on the same harness (for races across doors), `limits` the same transport on a
 * harness with small broker limits (LIMITS).
 */
export interface Doors {
  readonly main: Door;
  readonly other: Door;
  readonly limits: Door;
}

export type Transport = 'TCP' | 'WebSocket';

function listenerDoor(transport: Transport, harness: () => Harness, suffix = ''): Door {
  return transport === 'TCP'
    ? { name: `TCP${suffix}`, url: () => harness().mqttUrl, raw: (version) => RawConnection.tcp(harness().mqttPort, version) }
    : { name: `WebSocket${suffix}`, url: () => harness().wsUrl, raw: (version) => RawConnection.websocket(harness().wsUrl, version) };
}

/** The listener's doors of one transport, on the main harness and on the small-limits one. */
export function listenerDoors(transport: Transport, main: () => Harness, limits: () => Harness): Doors {
  return {
    main: listenerDoor(transport, main),
    other: listenerDoor(transport === 'TCP' ? 'WebSocket' : 'TCP', main),
    limits: listenerDoor(transport, limits, ' (small limits)'),
  };
}

/** How often the harnesses publish due wills and end expired sessions (the cloud's sweeper). */
export const TIMER_INTERVAL_MS = 200;

/** The broker limits of the `limits` door's harness. */
export const LIMITS = {
  /** Seconds: the broker's maximum keep-alive (MQTT_MAX_KEEPALIVE); 5.0 clients asking more (or 0) get it as Server Keep Alive, 3.1.1 ones are held to it. */
  keepAlive: 2,
  /** QoS 1 and 2 PUBLISHes a 5.0 client may leave unacknowledged. */
  receiveMaximum: 2,
  /** Bytes: the largest packet the broker accepts. */
  maximumPacketSize: 4096,
} as const;

export const mainHarnessOptions: HarnessOptions = { timerIntervalMs: TIMER_INTERVAL_MS };

export const limitsHarnessOptions: HarnessOptions = {
  timerIntervalMs: TIMER_INTERVAL_MS,
  maximumPacketSize: LIMITS.maximumPacketSize,
  broker: { receiveMaximum: LIMITS.receiveMaximum, maxKeepAlive: LIMITS.keepAlive },
};

let counter = 0;
/** A name no other test uses: topics and client ids never collide, even across test files. */
export const unique = (name: string): string => `${name}-${process.pid}-${Date.now().toString(36)}-${++counter}`;

/** A message as a client application sees it, properties included. */
export interface Received {
  readonly topic: string;
  readonly payload: string;
  readonly qos: number;
  readonly retain: boolean;
  readonly dup: boolean;
  readonly properties: NonNullable<IPublishPacket['properties']>;
}

/** Every message an MQTT.js client receives, in order. */
export function received(client: MqttClient): Received[] {
  const messages: Received[] = [];
  client.on('message', (topic, payload, packet) =>
    messages.push({
      topic,
      payload: payload.toString(),
      qos: packet.qos,
      retain: packet.retain,
      dup: packet.dup,
      properties: packet.properties ?? {},
    }),
  );
  return messages;
}

/** The PUBLISH packets a raw connection received and has not taken with next(). */
export function publishes(raw: RawConnection): IPublishPacket[] {
  return raw.packets.filter((p): p is IPublishPacket => p.cmd === 'publish');
}

export function payloads(messages: ReadonlyArray<{ payload: string | Buffer }>): string[] {
  return messages.map((m) => m.payload.toString());
}

export type ConnectFields = Partial<Omit<IConnectPacket, 'cmd' | 'protocolVersion'>>;

/** The clients one test opens, each closed when the test finishes. */
export class TestClients {
  private readonly open: Array<MqttClient | RawConnection> = [];

  constructor(
    private readonly doors: Doors,
    context: TestContext,
  ) {
    context.onTestFinished(async () => {
      await Promise.all(
        this.open.splice(0).map((c) => ('endAsync' in c ? c.endAsync(true).catch(() => undefined) : c.close())),
      );
    });
  }

  /**
   * An MQTT.js client, connected, with its CONNACK and every message it receives (collected from
   * the start: a resumed session's messages arrive right behind the CONNACK).
   */
  async mqtt(options: IClientOptions, door: Door = this.doors.main): Promise<{ client: MqttClient; connack: IConnackPacket; messages: Received[] }> {
    const client = mqtt.connect(door.url(), { reconnectPeriod: 0, connectTimeout: 10_000, ...options });
    this.open.push(client);
    const messages = received(client);
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
      client.once('close', () => reject(new Error('closed before CONNACK')));
    });
    return { client, connack, messages };
  }

  /** A raw byte pipe, not yet connected at the MQTT level. */
  async raw(version: Version, door: Door = this.doors.main): Promise<RawConnection> {
    const raw = await door.raw(version);
    this.open.push(raw);
    return raw;
  }

  /** A raw connection that has sent CONNECT and received its CONNACK. */
  async rawConnected(
    version: Version,
    fields: ConnectFields = {},
    door: Door = this.doors.main,
  ): Promise<{ raw: RawConnection; connack: IConnackPacket }> {
    const raw = await this.raw(version, door);
    raw.send({ cmd: 'connect', clientId: unique('raw'), clean: true, keepalive: 30, ...fields, protocolVersion: version });
    const connack = (await raw.next('connack')) as IConnackPacket;
    return { raw, connack };
  }
}

/** Opens and closes the clients of one test: `const c = clients(ctx)`. */
export function clientsFor(doors: Doors): (context: TestContext) => TestClients {
  return (context) => new TestClients(doors, context);
}

/**
 * A raw connection the broker closed, after a 5.0 DISCONNECT with this reason code (MQTT 5.0
 * section 4.13); a 3.1.1 client is just closed. [MQTT-3.14.2-2] the server's DISCONNECT carries
 * no Session Expiry Interval.
 */
export async function expectClosedBy(raw: RawConnection, version: Version, reasonCode: number, timeoutMs = 10_000): Promise<void> {
  await raw.waitClosed(timeoutMs);
  const disconnects = raw.packets.filter((p): p is IDisconnectPacket => p.cmd === 'disconnect');
  if (version === 5) {
    if (disconnects.length !== 1 || disconnects[0]!.reasonCode !== reasonCode) {
      throw new Error(`expected one DISCONNECT 0x${reasonCode.toString(16)}, got ${JSON.stringify(disconnects)}`);
    }
    if (disconnects[0]!.properties?.sessionExpiryInterval !== undefined) throw new Error('server DISCONNECT carries a Session Expiry Interval');
  } else if (disconnects.length > 0) {
    throw new Error('a 3.1.1 client was sent a DISCONNECT');
  }
}

/** Waits until the raw connection has received `count` PUBLISH packets. */
export async function publishesArrived(raw: RawConnection, count: number, timeoutMs = 10_000): Promise<IPublishPacket[]> {
  await eventually(() => publishes(raw).length >= count, `${count} PUBLISH packets`, timeoutMs);
  return publishes(raw);
}

/**
 * Acknowledges PUBLISH packets completely: PUBACK for QoS 1; PUBREC for QoS 2, then PUBCOMP for
 * the broker's PUBREL.
 */
export async function acknowledge(raw: RawConnection, ...packets: IPublishPacket[]): Promise<void> {
  for (const publish of packets) {
    if (publish.qos === 1) raw.send({ cmd: 'puback', messageId: publish.messageId! });
    if (publish.qos !== 2) continue;
    raw.send({ cmd: 'pubrec', messageId: publish.messageId! });
    await raw.next('pubrel');
    raw.send({ cmd: 'pubcomp', messageId: publish.messageId! });
  }
}

/**
 * Waits until the broker has handled everything this connection sent so far: it handles one
 * connection's packets in order, so the PINGRESP comes after them.
 */
export async function handled(raw: RawConnection): Promise<void> {
  raw.send({ cmd: 'pingreq' });
  await raw.next('pingresp');
}

/** A normal DISCONNECT (with these 5.0 properties), and the broker's close that follows it. */
export async function disconnect(raw: RawConnection, fields: Omit<IDisconnectPacket, 'cmd'> = {}): Promise<void> {
  raw.send({ cmd: 'disconnect', ...fields });
  await raw.waitClosed();
}

/**
 * The broker's handlers driven without sockets: encoded packets into handlePackets (the packet
 * loop and its dispatcher), the real store on DynamoDB Local, and a gateway that records what
 * each connection would receive, in the order it was sent (across connections too). Each test
 * asserts what a client would see, and in what order.
 */
import mqttPacket, { type IConnackPacket, type IDisconnectPacket, type IPublishPacket, type Packet } from 'mqtt-packet';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { wrapEachPort } from '../../local/faults';
import { handleConnectionClosed } from '../../shared/broker/connection-closed';
import type { BrokerDeps } from '../../shared/broker/context';
import { handlePackets } from '../../shared/broker/packets';
import { StoreUnavailableError, type BrokerStore, type DeliveryResult } from '../../shared/broker/ports';
import { ReasonCode } from '../../shared/protocol/reason-codes';
import { recordingDeps, RecordingGateway } from '../support/recording-gateway';

/** The recording gateway, also keeping the order of sends across connections; connections in `gone` are gone. */
class TimelineGateway extends RecordingGateway {
  private readonly sends: Array<{ connectionId: string; data: Buffer }> = [];
  readonly gone = new Set<string>();

  override async send(connectionId: string, data: Buffer): Promise<DeliveryResult> {
    if (this.gone.has(connectionId)) return 'gone';
    this.sends.push({ connectionId, data });
    return super.send(connectionId, data);
  }

  /** Every packet sent to the connections given, as `<connection name> <cmd>`, in the order sent (5.0 clients). */
  timeline(names: Readonly<Record<string, string>>): string[] {
    const byId = new Map(Object.entries(names).map(([name, id]) => [id, name]));
    return this.sends.flatMap(({ connectionId, data }) => {
      const name = byId.get(connectionId);
      return name === undefined ? [] : parse(data).map((packet) => `${name} ${label(packet)}`);
    });
  }
}

function parse(data: Buffer, version: 4 | 5 = 5): Packet[] {
  const packets: Packet[] = [];
  const parser = mqttPacket.parser({ protocolVersion: version });
  parser.on('packet', (packet: Packet) => packets.push(packet));
  parser.parse(data);
  return packets;
}

function label(packet: Packet): string {
  if (packet.cmd === 'publish') return `publish ${packet.payload.toString()}${packet.dup ? ' dup' : ''}`;
  if ('messageId' in packet && packet.messageId !== undefined) return `${packet.cmd} ${packet.messageId}`;
  return packet.cmd;
}

const bytes = (packet: object, version: 4 | 5 = 5) => mqttPacket.generate(packet as Packet, { protocolVersion: version });
const connect = (clientId: string, options: { clean?: boolean; version?: 4 | 5; receiveMaximum?: number } = {}) =>
  bytes(
    {
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: options.version ?? 5,
      clientId,
      clean: options.clean ?? true,
      keepalive: 60,
      ...((options.version ?? 5) === 5
        ? { properties: { sessionExpiryInterval: options.clean === false ? 600 : 0, ...(options.receiveMaximum ? { receiveMaximum: options.receiveMaximum } : {}) } }
        : {}),
    },
    options.version ?? 5,
  );
const subscribe = (messageId: number, topic: string, qos: 0 | 1 | 2 = 1) => bytes({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos }] });
const publish = (topic: string, payload: string, qos: 0 | 1 | 2, messageId?: number, dup = false) =>
  bytes({ cmd: 'publish', topic, payload: Buffer.from(payload), qos, dup, retain: false, ...(messageId !== undefined ? { messageId } : {}) });
const puback = (messageId: number) => bytes({ cmd: 'puback', messageId });

const gateway = new TimelineGateway();
let deps: BrokerDeps;
const errors: string[] = [];
const run = randomBytes(3).toString('hex');
let n = 0;
/** A new connection id and client id for `who`, a topic no other test uses. */
const fresh = (who: string) => ({ connectionId: `${who}-${run}-${++n}`, clientId: `${who}-${run}-${n}`, topic: `t/${run}/${n}` });

beforeAll(async () => {
  deps = await recordingDeps('handlers', gateway, {
    log: { info: () => undefined, warn: () => undefined, error: (message, fields) => errors.push(`${message} ${JSON.stringify(fields)}`) },
  });
});

/** A store whose `deliveries.startDeliveries` fails with `error`. */
function failingDeliveries(store: BrokerStore, error: Error): BrokerStore {
  return wrapEachPort(store, (port, method, call) => (port === 'deliveries' && method === 'startDeliveries' ? Promise.reject(error) : call()));
}

describe('handlePackets: what a client sees, in order', () => {
  afterEach(() => {
    // Nothing is sent to a connection after it is closed, and no handler failed unexpectedly.
    expect(gateway.afterClose).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('[MQTT-3.2.0-1] [MQTT-3.8.4-1] [MQTT-3.8.4-2] CONNECT and SUBSCRIBE in one batch: CONNACK first, then SUBACK with the packet id of the SUBSCRIBE', async () => {
    const c = fresh('sub');
    await handlePackets(deps, c.connectionId, [connect(c.clientId), subscribe(7, c.topic)]);
    expect(gateway.timeline({ c: c.connectionId })).toEqual(['c connack', 'c suback 7']);
    expect((gateway.packets(c.connectionId)[0] as IConnackPacket).reasonCode).toBe(ReasonCode.Success);
  });

  it('[MQTT-4.3.2-4] a QoS 1 PUBLISH is acknowledged after its delivery to the subscriber is in flight and sent', async () => {
    const sub = fresh('sub');
    const pub = fresh('pub');
    await handlePackets(deps, sub.connectionId, [connect(sub.clientId), subscribe(1, sub.topic)]);
    await handlePackets(deps, pub.connectionId, [connect(pub.clientId), publish(sub.topic, 'm1', 1, 5)]);
    // The publisher's batch goes out after the deliveries it confirms (the outbox sends other connections first).
    expect(gateway.timeline({ sub: sub.connectionId, pub: pub.connectionId })).toEqual(['sub connack', 'sub suback 1', 'sub publish m1', 'pub connack', 'pub puback 5']);
    // In flight before the acknowledgement: the subscriber's session holds it until its PUBACK.
    expect((await deps.store.deliveries.listOutgoing(sub.clientId)).map((m) => m.payload.toString())).toEqual(['m1']);
  });

  it('[MQTT-4.6.0-2] [MQTT-4.6.0-6] a run of QoS 1 PUBLISHes: the subscriber gets them in order, then the publisher its PUBACKs, in order', async () => {
    const sub = fresh('sub');
    const pub = fresh('pub');
    await handlePackets(deps, sub.connectionId, [connect(sub.clientId), subscribe(1, sub.topic)]);
    await handlePackets(deps, pub.connectionId, [connect(pub.clientId)]);
    await handlePackets(deps, pub.connectionId, [publish(sub.topic, 'a', 1, 1), publish(sub.topic, 'b', 0), publish(sub.topic, 'c', 1, 2)]);
    expect(gateway.timeline({ sub: sub.connectionId, pub: pub.connectionId }).slice(3)).toEqual([
      'sub publish a',
      'sub publish b',
      'sub publish c',
      'pub puback 1',
      'pub puback 2',
    ]);
  });

  it('[MQTT-4.3.2-4] a QoS 1 PUBLISH whose delivery cannot be recorded is not acknowledged; the subscriber is closed, to get it again when it reconnects', async () => {
    const sub = fresh('sub');
    const pub = fresh('pub');
    await handlePackets(deps, sub.connectionId, [connect(sub.clientId), subscribe(1, sub.topic)]);
    await handlePackets(deps, pub.connectionId, [connect(pub.clientId)]);
    const failing = { ...deps, store: failingDeliveries(deps.store, new StoreUnavailableError('busy', 'injected')) };
    await handlePackets(failing, pub.connectionId, [publish(sub.topic, 'lost', 1, 9)]);
    expect(gateway.timeline({ sub: sub.connectionId, pub: pub.connectionId }).slice(3)).toEqual(['sub disconnect', 'pub disconnect']);
    // 5.0: both hear why (0x89 Server busy), and both connections close.
    for (const id of [sub.connectionId, pub.connectionId]) {
      expect((gateway.packets(id).at(-1) as IDisconnectPacket).reasonCode).toBe(ReasonCode.ServerBusy);
      expect(gateway.closed.has(id)).toBe(true);
    }
  });

  it('[MQTT-4.3.2-4] a delivery that fails for another reason: no PUBACK either, and DISCONNECT 0x80 to both', async () => {
    const sub = fresh('sub');
    const pub = fresh('pub');
    await handlePackets(deps, sub.connectionId, [connect(sub.clientId), subscribe(1, sub.topic)]);
    await handlePackets(deps, pub.connectionId, [connect(pub.clientId)]);
    const before = errors.length;
    await handlePackets({ ...deps, store: failingDeliveries(deps.store, new Error('injected')) }, pub.connectionId, [
      publish(sub.topic, 'ok-before', 0),
      publish(sub.topic, 'lost', 1, 3),
    ]);
    expect(gateway.packets(pub.connectionId).map((p) => p.cmd)).toEqual(['connack', 'disconnect']);
    expect((gateway.packets(pub.connectionId)[1] as IDisconnectPacket).reasonCode).toBe(ReasonCode.UnspecifiedError);
    expect((gateway.packets(sub.connectionId).at(-1) as IDisconnectPacket).reasonCode).toBe(ReasonCode.UnspecifiedError);
    expect(errors.length).toBe(before + 1);
    errors.length = before;
  });

  it('[MQTT-3.2.0-1] [MQTT-4.4.0-1] [MQTT-3.3.1-1] a resumed session: CONNACK, then what was in flight (DUP set), then its queue, before anything new', async () => {
    const sub = fresh('sub');
    const pub = fresh('pub');
    await handlePackets(deps, sub.connectionId, [connect(sub.clientId, { clean: false }), subscribe(1, sub.topic)]);
    await handlePackets(deps, pub.connectionId, [connect(pub.clientId)]);
    await handlePackets(deps, pub.connectionId, [publish(sub.topic, 'in-flight', 1, 1)]);
    await handleConnectionClosed(deps, sub.connectionId);
    await handlePackets(deps, pub.connectionId, [publish(sub.topic, 'queued-1', 1, 2), publish(sub.topic, 'queued-2', 1, 3)]);

    const again = `${sub.connectionId}-again`;
    await handlePackets(deps, again, [connect(sub.clientId, { clean: false })]);
    await handlePackets(deps, pub.connectionId, [publish(sub.topic, 'new', 1, 4)]);
    expect(gateway.timeline({ again })).toEqual(['again connack', 'again publish in-flight dup', 'again publish queued-1', 'again publish queued-2', 'again publish new']);
    expect((gateway.packets(again)[0] as IConnackPacket).sessionPresent).toBe(true);
  });

  it('[MQTT-3.3.4-9] a PUBACK frees room under the Receive Maximum: the queued message follows in the answer to it', async () => {
    const sub = fresh('sub');
    const pub = fresh('pub');
    await handlePackets(deps, sub.connectionId, [connect(sub.clientId, { receiveMaximum: 1 }), subscribe(1, sub.topic)]);
    await handlePackets(deps, pub.connectionId, [connect(pub.clientId), publish(sub.topic, 'first', 1, 1), publish(sub.topic, 'second', 1, 2)]);
    const sent = () => gateway.packets(sub.connectionId).filter((p): p is IPublishPacket => p.cmd === 'publish');
    expect(sent().map((p) => p.payload.toString())).toEqual(['first']);
    await handlePackets(deps, sub.connectionId, [puback(sent()[0]!.messageId!)]);
    expect(sent().map((p) => p.payload.toString())).toEqual(['first', 'second']);
  });

  it('[MQTT-4.3.3-10] [MQTT-4.3.3-11] QoS 2: a resent PUBLISH is acknowledged again but delivered once; PUBREL is answered with PUBCOMP', async () => {
    const sub = fresh('sub');
    const pub = fresh('pub');
    await handlePackets(deps, sub.connectionId, [connect(sub.clientId), subscribe(1, sub.topic, 2)]);
    await handlePackets(deps, pub.connectionId, [connect(pub.clientId), publish(sub.topic, 'once', 2, 4)]);
    await handlePackets(deps, pub.connectionId, [publish(sub.topic, 'once', 2, 4, true), bytes({ cmd: 'pubrel', messageId: 4 })]);
    expect(gateway.timeline({ sub: sub.connectionId, pub: pub.connectionId }).slice(2)).toEqual(['sub publish once', 'pub connack', 'pub pubrec 4', 'pub pubrec 4', 'pub pubcomp 4']);
  });

  it('[MQTT-3.1.4-3] a CONNECT with a client id in use takes the session over: the old connection hears DISCONNECT 0x8E', async () => {
    const first = fresh('twin');
    const second = `${first.connectionId}-second`;
    await handlePackets(deps, first.connectionId, [connect(first.clientId)]);
    await handlePackets(deps, second, [connect(first.clientId)]);
    expect(gateway.timeline({ first: first.connectionId })).toEqual(['first connack', 'first disconnect']);
    expect(gateway.timeline({ second })).toEqual(['second connack']);
    expect((gateway.packets(first.connectionId)[1] as IDisconnectPacket).reasonCode).toBe(ReasonCode.SessionTakenOver);
    expect(gateway.closed.has(first.connectionId)).toBe(true);
  });

  it('[MQTT-3.1.0-2] a second CONNECT is a protocol error: DISCONNECT 0x82, and nothing after it is handled', async () => {
    const c = fresh('twice');
    await handlePackets(deps, c.connectionId, [connect(c.clientId), connect(c.clientId), bytes({ cmd: 'pingreq' })]);
    expect(gateway.timeline({ c: c.connectionId })).toEqual(['c connack', 'c disconnect']);
    expect((gateway.packets(c.connectionId)[1] as IDisconnectPacket).reasonCode).toBe(ReasonCode.ProtocolError);
    expect(gateway.closed.has(c.connectionId)).toBe(true);
  });

  it('[MQTT-3.1.0-1] a first packet other than CONNECT closes the connection, with no CONNACK', async () => {
    const c = fresh('early');
    await handlePackets(deps, c.connectionId, [bytes({ cmd: 'pingreq' }), connect(c.clientId)]);
    expect(gateway.packets(c.connectionId)).toEqual([]);
    expect(gateway.closed.has(c.connectionId)).toBe(true);
  });

  it('[MQTT-3.12.4-1] PINGREQ is answered with PINGRESP', async () => {
    const c = fresh('ping');
    await handlePackets(deps, c.connectionId, [connect(c.clientId), bytes({ cmd: 'pingreq' })]);
    expect(gateway.timeline({ c: c.connectionId })).toEqual(['c connack', 'c pingresp']);
  });

  it('a subscriber found gone is the batch result, for the entry point to end; the batch does not end it itself', async () => {
    const sub = fresh('sub');
    const pub = fresh('pub');
    await handlePackets(deps, sub.connectionId, [connect(sub.clientId), subscribe(1, sub.topic, 0)]);
    gateway.gone.add(sub.connectionId);
    const { gone } = await handlePackets(deps, pub.connectionId, [connect(pub.clientId), publish(sub.topic, 'to nobody', 0)]);
    expect(gone).toEqual([sub.connectionId]);
    expect(await deps.store.connections.getConnection(sub.connectionId)).toBeDefined();
    await handleConnectionClosed(deps, sub.connectionId);
    expect(await deps.store.connections.getConnection(sub.connectionId)).toBeUndefined();
  });
});

/**
 * A handler dying at any point and invoked again. Every store call made while a PUBLISH is handled
 * fails in turn, once before it runs (nothing written) and once after (written, and the handler
 * never learns it); the handler goes on from the error as it would from DynamoDB's, and the
 * publisher, not acknowledged, reconnects and resends until it is. Then every subscriber reconnects
 * (as its client does when its connection was closed) and what each received is counted by packet
 * id, as a QoS 2 receiver counts: two connected subscribers and one offline one, all at QoS 2.
 * Whatever the point, a QoS 2 message reaches each subscriber exactly once, and a QoS 1 message
 * at least once. The same again with every DynamoDB call failing in turn, which reaches points
 * inside one store operation: between a delivery's claim of packet ids and the write of its records,
 * between those records and the exactly-once marks' transaction.
 */
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { BrokerDeps } from '../../shared/broker/context';
import { handleConnectionClosed } from '../../shared/broker/connection-closed';
import { handlePackets } from '../../shared/broker/packets';
import type { BrokerStore } from '../../shared/broker/ports';
import { wrapEachPort } from '../../local/faults';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createBrokerDeps } from '../../functions/runtime';
import { localCredentials, LOCAL_REGION } from '../../local/local-aws';
import { createDynamoStore } from '../../shared/store/create-dynamo-store';
import { createTables } from '../../shared/store/create-tables';
import { localTableNames, type TableNames } from '../../shared/store/tables';
import { RecordingGateway } from '../support/recording-gateway';

/** The store, failing the call numbered `failAt` (0-based) before or after it runs; counts the calls. */
function failingStore(store: BrokerStore, failAt: number, when: 'before' | 'after'): { store: BrokerStore; calls: () => number } {
  let calls = 0;
  const wrapped = wrapEachPort(store, async (_port, method, call) => {
    const n = calls++;
    if (n === failAt && when === 'before') throw new Error(`injected: ${method} failed before it ran`);
    const result = await call();
    if (n === failAt) throw new Error(`injected: ${method} failed after it ran`);
    return result;
  });
  return { store: wrapped, calls: () => calls };
}

/**
 * The store on the same tables, each DynamoDB call counted and the one numbered `failAt` failing
 * before or after it ran: points inside a store operation too, e.g. between a delivery's claim of
 * packet ids and the write of its records.
 */
function failingDynamoDb(failAt: number, when: 'before' | 'after'): { store: BrokerStore; calls: () => number; destroy: () => void } {
  let calls = 0;
  const client = new DynamoDBClient({ endpoint: inject('dynamoDbEndpoint'), region: LOCAL_REGION, credentials: localCredentials });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const n = calls++;
      if (n === failAt && when === 'before') throw new Error(`injected: ${context.commandName} failed before it ran`);
      const result = await next(args);
      if (n === failAt) throw new Error(`injected: ${context.commandName} failed after it ran`);
      return result;
    },
    { step: 'initialize', name: 'crashPoint' },
  );
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false } });
  return { store: createDynamoStore({ client: doc, tables }), calls: () => calls, destroy: () => client.destroy() };
}

const bytes = (packet: object) => mqttPacket.generate(packet as Packet, { protocolVersion: 5 });
const connect = (clientId: string) =>
  bytes({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clientId, clean: false, keepalive: 60, properties: { sessionExpiryInterval: 600 } });

let deps: BrokerDeps;
const gateway = new RecordingGateway();
let n = 0;
const newConnection = (who: string) => `${who}-conn-${++n}`;

let tables: TableNames;

beforeAll(async () => {
  const endpoint = inject('dynamoDbEndpoint');
  tables = localTableNames(`crash-${randomBytes(4).toString('hex')}`);
  const admin = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: localCredentials });
  await createTables(admin, tables);
  admin.destroy();
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
  deps = { ...createBrokerDeps({ tables, dynamoDb: { endpoint, region: LOCAL_REGION, credentials: localCredentials }, security: { allowAnonymous: true }, log }), gateway };
});

/**
 * One round: subscribers set up, the PUBLISH handled with the store failing at call `failAt`, the
 * publisher resending until acknowledged, the subscribers reconnecting. Returns, per subscriber, the
 * packet ids the message reached it with, and whether a failure was injected at all.
 */
async function round(qos: 1 | 2, failAt: number, when: 'before' | 'after', level: 'port' | 'dynamodb' = 'port'): Promise<{ injected: boolean; ids: number[][] }> {
  const run = `${qos}-${level}-${when}-${failAt}-${randomBytes(3).toString('hex')}`;
  const topic = `crash/${run}`;
  const subscribers = ['a', 'b', 'c'].map((name) => ({ clientId: `sub-${name}-${run}`, connections: [newConnection(name)] }));
  for (const s of subscribers) {
    await handlePackets(deps, s.connections[0]!, [connect(s.clientId), bytes({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 2 }] })]);
  }
  // The third is offline: its message waits in its session's queue.
  await handleConnectionClosed(deps, subscribers[2]!.connections[0]!);

  const publisher = `pub-${run}`;
  let connection = newConnection('pub');
  await handlePackets(deps, connection, [connect(publisher)]);
  const publish = (dup: boolean) => bytes({ cmd: 'publish', topic, payload: Buffer.from(run), qos, dup, retain: false, messageId: 7 });
  const faulty = level === 'port' ? { ...failingStore(deps.store, failAt, when), destroy: () => undefined } : failingDynamoDb(failAt, when);
  // An error the handler does not catch fails the invocation; the listener then closes the connection.
  await handlePackets({ ...deps, store: faulty.store }, connection, [publish(false)]).catch(() => undefined);
  faulty.destroy();
  const acknowledged = () => gateway.packets(connection).some((p) => p.cmd === (qos === 2 ? 'pubrec' : 'puback'));
  for (let attempt = 0; !acknowledged(); attempt++) {
    expect(attempt, `${run}: the publisher is acknowledged within a few resends (it got ${gateway.packets(connection).map((p) => p.cmd).join(', ')})`).toBeLessThan(3);
    await handleConnectionClosed(deps, connection);
    connection = newConnection('pub');
    await handlePackets(deps, connection, [connect(publisher), publish(true)]);
  }
  if (qos === 2) await handlePackets(deps, connection, [bytes({ cmd: 'pubrel', messageId: 7 })]);

  for (const s of subscribers) {
    const again = newConnection('again');
    s.connections.push(again);
    await handlePackets(deps, again, [connect(s.clientId)]);
  }
  const ids = subscribers.map((s) => [
    ...new Set(
      s.connections.flatMap((id) =>
        gateway.packets(id).flatMap((p) => (p.cmd === 'publish' && (p as IPublishPacket).topic === topic ? [(p as IPublishPacket).messageId!] : [])),
      ),
    ),
  ]);
  return { injected: faulty.calls() > failAt, ids };
}

describe('a PUBLISH whose handler fails at any store call, then is resent', () => {
  for (const qos of [2, 1] as const) {
    it(`QoS ${qos}: every subscriber gets it ${qos === 2 ? 'exactly once' : 'at least once'}, whichever call fails, before or after it ran`, async () => {
      let points = 0;
      for (const when of ['before', 'after'] as const) {
        for (let failAt = 0; ; failAt++) {
          const { injected, ids } = await round(qos, failAt, when);
          if (!injected) break;
          points++;
          for (const [i, got] of ids.entries()) {
            const where = `failing call ${failAt} ${when} it ran, subscriber ${i}`;
            if (qos === 2) expect(got.length, where).toBe(1);
            else expect(got.length, where).toBeGreaterThanOrEqual(1);
          }
        }
      }
      console.log(`QoS ${qos}: ${points} failure points tried`);
      expect(points).toBeGreaterThan(10);
    }, 120_000);
  }
});

describe('a PUBLISH whose handler fails at any DynamoDB call (inside store operations too: between a claim of packet ids and its records), then is resent', () => {
  for (const qos of [2, 1] as const) {
    it(`QoS ${qos}: every subscriber gets it ${qos === 2 ? 'exactly once' : 'at least once'}, whichever DynamoDB call fails, before or after it ran`, async () => {
      let points = 0;
      for (const when of ['before', 'after'] as const) {
        for (let failAt = 0; ; failAt++) {
          const { injected, ids } = await round(qos, failAt, when, 'dynamodb');
          if (!injected) break;
          points++;
          for (const [i, got] of ids.entries()) {
            const where = `failing DynamoDB call ${failAt} ${when} it ran, subscriber ${i}`;
            if (qos === 2) expect(got.length, where).toBe(1);
            else expect(got.length, where).toBeGreaterThanOrEqual(1);
          }
        }
      }
      console.log(`QoS ${qos}: ${points} DynamoDB failure points tried`);
      expect(points).toBeGreaterThan(10);
    }, 180_000);
  }
});

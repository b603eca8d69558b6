/**
 * The ConnectionStore's contract, against DynamoDB Local: one record per network connection, from
 * its CONNECT to its end. The end is claimed by one caller at a time (with a DISCONNECT's changes
 * written in the claim), again by another once the claim's lease has passed; the record goes when
 * the end is complete.
 */
import { describe, expect, it } from 'vitest';
import type { ConnectionRecord } from '../../../shared/broker/ports';
import { uniqueClientId, storeFixtureForFile } from '../store-fixture';
import { connectionId, HOLD_MS } from './support';

const fixture = await storeFixtureForFile();
const store = fixture.store;

describe('connection records', () => {
  it('[MQTT-3.1.3-10] a record is read back as written, its will\'s user properties in their order', async () => {
    const clientId = uniqueClientId('record');
    const conn = connectionId();
    const record: ConnectionRecord = {
      connectionId: conn,
      clientId,
      protocolVersion: 5,
      keepalive: 30,
      cleanStart: true,
      sessionExpiryInterval: 0,
      connectedAt: Date.now(),
      receiveMaximum: 10,
      username: 'alice',
      acl: ['read a/#'],
      will: {
        topic: 'w',
        payload: Buffer.from('bye'),
        qos: 1,
        retain: true,
        delayInterval: 5,
        properties: { correlationData: Buffer.from([1, 2]), userProperties: { z: '1', a: ['2', '3'], m: '4' } },
      },
    };
    await store.connections.putConnection(record);
    const read = await store.connections.getConnection(conn);
    expect(read).toEqual({ ...record, topicAliases: {} });
    expect(Object.keys(read!.will!.properties!.userProperties!)).toEqual(['z', 'a', 'm']);
    expect(await store.connections.getConnection(connectionId())).toBeUndefined();
  });

  it('updateConnection records the topic aliases a client sets, and creates nothing for a connection that is gone', async () => {
    const clientId = uniqueClientId('alias');
    const conn = connectionId();
    await store.connections.putConnection({ connectionId: conn, clientId, protocolVersion: 5, keepalive: 60, cleanStart: true, sessionExpiryInterval: 0, connectedAt: Date.now() });
    await store.connections.updateConnection(conn, { topicAlias: [1, 'a/b'] });
    await store.connections.updateConnection(conn, { topicAlias: [2, 'c'] });
    await store.connections.updateConnection(conn, { topicAlias: [1, 'a/z'] });
    expect((await store.connections.getConnection(conn))?.topicAliases).toEqual({ 1: 'a/z', 2: 'c' });
    const gone = connectionId();
    await store.connections.updateConnection(gone, { topicAlias: [1, 'x'] });
    expect(await store.connections.getConnection(gone)).toBeUndefined();
  });
});

describe('the end of a connection', () => {
  const record = (clientId: string, conn: string) => ({
    connectionId: conn,
    clientId,
    protocolVersion: 5 as const,
    keepalive: 60,
    cleanStart: false,
    sessionExpiryInterval: 3600,
    connectedAt: Date.now(),
    will: { topic: `${clientId}/will`, payload: Buffer.from('gone'), qos: 1 as const, retain: false },
  });

  it('is claimed by one caller at a time, again once the lease has passed, and forgotten when deleted', async () => {
    let now = Date.now();
    const clocked = fixture.storeAt(() => now);
    const clientId = uniqueClientId('end');
    const conn = connectionId();
    await clocked.connections.putConnection(record(clientId, conn));
    // A DISCONNECT's changes are written with its claim, so whoever redoes the end sees them.
    const claimed = await clocked.connections.claimConnectionEnd(conn, HOLD_MS, { sessionExpiryInterval: 0, dropWill: true });
    expect(claimed).toMatchObject({ clientId, sessionExpiryInterval: 0 });
    expect(claimed?.will).toBeUndefined();
    expect(await clocked.connections.claimConnectionEnd(conn, HOLD_MS)).toBeUndefined();
    // The one who claimed it died half way: after the lease, the next report (or the sweeper) redoes it.
    now += 31_000;
    expect(await clocked.connections.claimConnectionEnd(conn, HOLD_MS)).toMatchObject({ clientId, sessionExpiryInterval: 0 });
    await clocked.connections.deleteConnection(conn);
    now += 31_000;
    expect(await clocked.connections.claimConnectionEnd(conn, HOLD_MS)).toBeUndefined();
  });

  it('is given to exactly one of many callers at once', async () => {
    const clientId = uniqueClientId('end-race');
    const conn = connectionId();
    await store.connections.putConnection(record(clientId, conn));
    const claims = await Promise.all(Array.from({ length: 6 }, () => store.connections.claimConnectionEnd(conn, HOLD_MS)));
    expect(claims.filter((claim) => claim !== undefined)).toHaveLength(1);
    // Without a DISCONNECT's changes, the will stays with the record.
    expect(claims.find((claim) => claim !== undefined)?.will?.topic).toBe(`${clientId}/will`);
  });
});

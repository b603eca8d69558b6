/**
 * The ConnectionDirectory's contract, against DynamoDB Local: the sweeper's view of the
 * connections. Each connection is found under its owner (API Gateway's few shards, or its
 * listener task's), page by page; listener tasks register and are listed; one sweep at a time
 * holds the lease, and what it leaves (its cursors) is handed to the next.
 */
import { describe, expect, it } from 'vitest';
import { newListenerConnectionId } from '../../../shared/gateway/connection-id';
import { DynamoConnectionDirectory } from '../../../shared/store/dynamo-connection-directory';
import { storeFixtureForFile, uniqueClientId } from '../store-fixture';
import { connectionId } from './support';

const fixture = await storeFixtureForFile();
const store = fixture.store;
const directory = new DynamoConnectionDirectory({ client: fixture.documentClient, tableName: fixture.tables.connections });

async function put(connection: string, extra: { tokenExpiresAt?: number } = {}): Promise<string> {
  const clientId = uniqueClientId('owned');
  await store.connections.putConnection({ connectionId: connection, clientId, protocolVersion: 4, keepalive: 60, cleanStart: true, sessionExpiryInterval: 0, connectedAt: Date.now(), ...extra });
  return clientId;
}

async function allOwned(owners: readonly string[], pageSize: number): Promise<string[]> {
  const found: string[] = [];
  for (const owner of owners) {
    let after: string | undefined;
    for (;;) {
      const page = await directory.owned(owner, after, pageSize);
      found.push(...page.map((c) => c.connectionId));
      if (page.length < pageSize) break;
      after = page[page.length - 1]!.connectionId;
    }
  }
  return found.sort();
}

describe('connections by owner', () => {
  it("finds a listener task's connections under that task only, page by page, with what the sweeper checks", async () => {
    const endpoint = `http://10.9.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}:8090`;
    const mine = Array.from({ length: 7 }, () => newListenerConnectionId(endpoint));
    const clientIds = await Promise.all(mine.map((id, i) => put(id, i === 0 ? { tokenExpiresAt: 1234 } : {})));
    await put(newListenerConnectionId(`${endpoint}1`));
    await put(connectionId());

    expect(await allOwned(directory.taskOwners(endpoint), 2)).toEqual([...mine].sort());
    const first = (await Promise.all(directory.taskOwners(endpoint).map((owner) => directory.owned(owner, undefined, 10)))).flat().find((c) => c.connectionId === mine[0]);
    expect(first).toEqual({ connectionId: mine[0], clientId: clientIds[0], protocolVersion: 4, keepalive: 60, tokenExpiresAt: 1234 });
    // A record read back carries no trace of its owner.
    expect(await store.connections.getConnection(mine[1]!)).not.toHaveProperty('owner');
  });

  it("finds API Gateway's connections under the browser owners, and no listener's", async () => {
    const browsers = [connectionId(), connectionId(), connectionId()];
    for (const id of browsers) await put(id);
    const found = await allOwned(directory.browserOwners(), 100);
    expect(found).toEqual(expect.arrayContaining(browsers));
    expect(found.some((id) => id.startsWith('l.'))).toBe(false);
  });
});

describe('listener tasks', () => {
  it('a heartbeat registers a task, a later one moves its time, and a forgotten task is listed no more', async () => {
    const endpoint = `http://10.8.0.${Math.floor(Math.random() * 250)}:8090`;
    await directory.recordHeartbeat(endpoint, 1_000);
    await directory.recordHeartbeat(endpoint, 2_000);
    expect((await directory.listTasks()).filter((t) => t.endpoint === endpoint)).toEqual([{ endpoint, heartbeatAt: 2_000 }]);
    await directory.forgetTask(endpoint);
    expect((await directory.listTasks()).map((t) => t.endpoint)).not.toContain(endpoint);
  });
});

describe('the sweep lease', () => {
  it('one holder at a time; the state it leaves goes to the next; a lease that passed is taken over', async () => {
    const now = Date.now();
    expect(await directory.claimSweep('first', now, 60_000)).toEqual({});
    expect(await directory.claimSweep('second', now + 1_000, 60_000)).toBeUndefined();
    const left = { browsers: { owner: 'a#2', after: 'xyz' } };
    await directory.releaseSweep('first', left);
    expect(await directory.claimSweep('second', now + 2_000, 60_000)).toEqual(left);
    // 'second' dies holding it: its lease passes, a third takes over, and the late release of 'second' changes nothing.
    expect(await directory.claimSweep('third', now + 63_000, 60_000)).toEqual(left);
    await directory.releaseSweep('second', {});
    await directory.releaseSweep('third', { devices: { owner: 'l#x#0', after: '' } });
    expect(await directory.claimSweep('fourth', now + 64_000, 60_000)).toEqual({ devices: { owner: 'l#x#0', after: '' } });
  });
});

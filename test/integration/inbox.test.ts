/**
 * The API Gateway door's inbound order, against DynamoDB Local: the sequencer over the real
 * Inbox table, fed the way API Gateway feeds `$default` (any order, any overlap).
 */
import { randomBytes } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { localCredentials, LOCAL_REGION } from '../../local/local-aws';
import { createJsonLogger } from '../../shared/util/logger';
import { Sequencer, type HandleMessages, type SequencerOptions } from '../../shared/broker/sequencer';
import { ConnectionsApi } from '../../shared/gateway/connections-api';
import { DynamoConnectionInbox } from '../../shared/store/dynamo-inbox';
import { createStoreFixture, type StoreFixture } from './store-fixture';

let fixture: StoreFixture;
let client: DynamoDBClient;
let inbox: DynamoConnectionInbox;

beforeAll(async () => {
  fixture = await createStoreFixture();
  client = new DynamoDBClient({ endpoint: inject('dynamoDbEndpoint'), region: LOCAL_REGION, credentials: localCredentials });
  inbox = new DynamoConnectionInbox({ client: DynamoDBDocumentClient.from(client), tableName: fixture.tables.inbox });
});

afterAll(async () => {
  client.destroy();
  await fixture.dispose();
});

function sequencer(options: Partial<SequencerOptions> = {}): Sequencer {
  // The gateway is only used to close a connection whose stream broke; no test here gets there.
  return new Sequencer({ gateway: new ConnectionsApi({}), log: createJsonLogger('silent'), now: Date.now }, inbox, options);
}

function connectionId(): string {
  return randomBytes(8).toString('base64');
}

/** Records what was handled, and fails if two invocations ever handle one connection at once. */
function recorder(): { handled: string[]; overlaps: number; handle: HandleMessages } {
  let active = 0;
  const record = { handled: [] as string[], overlaps: 0, handle: (async () => undefined) as HandleMessages };
  record.handle = async (bodies) => {
    active += 1;
    if (active > 1) record.overlaps += 1;
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
    record.handled.push(...bodies);
    active -= 1;
  };
  return record;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('sequencer over the Inbox table', () => {
  it('handles messages that arrive in any order and overlap: each once, in sequence order, one invocation at a time', async () => {
    const connections = [connectionId(), connectionId()];
    const records = connections.map(() => recorder());
    const count = 20;
    const invocations = connections.flatMap((id, c) =>
      Array.from({ length: count }, (_, i) => async () => {
        await sleep(Math.random() * 40);
        // Each invocation its own Sequencer, as each Lambda container would have.
        await sequencer().receive(id, i + 1, String(i + 1), records[c]!.handle);
      }),
    );
    await Promise.all(invocations.map((invoke) => invoke()));
    const expected = Array.from({ length: count }, (_, i) => String(i + 1));
    for (const [c, id] of connections.entries()) {
      expect(records[c]!.handled).toEqual(expected);
      expect(records[c]!.overlaps).toBe(0);
      // nothing left parked, and the lease is free with the next number expected
      expect(await inbox.parked(id, 1, 100)).toEqual([]);
      expect(await inbox.acquire(id, 'check', 1000)).toMatchObject({ next: count + 1 });
    }
  });

  it('the lost wake-up: a message parked while the holder works is handled when the holder lets go', async () => {
    const id = connectionId();
    const handled: string[] = [];
    const second = sequencer();
    await sequencer().receive(id, 1, 'first', async (bodies) => {
      // While the first holds the lease, the second arrives, parks, fails to take it, and returns.
      await second.receive(id, 2, 'second', async (more) => void handled.push(...more));
      expect((await inbox.parked(id, 2, 1)).map((m) => m.sequence)).toEqual([2]);
      handled.push(...bodies);
    });
    expect(handled).toEqual(['first', 'second']);
    expect(await inbox.parked(id, 1, 10)).toEqual([]);
  });

  it('a holder that died keeps the lease only until it runs out; the next message takes over and handles what waited', async () => {
    const id = connectionId();
    const { handled, handle } = recorder();
    expect(await inbox.acquire(id, 'crashed-invocation', 300)).toMatchObject({ next: 1 });
    await sequencer({ leaseMs: 300 }).receive(id, 1, '1', handle);
    expect(handled).toEqual([]);
    await sleep(350);
    await sequencer({ leaseMs: 300 }).receive(id, 2, '2', handle);
    expect(handled).toEqual(['1', '2']);
  });

  it('a message whose sequence number was already handled is dropped', async () => {
    const id = connectionId();
    const { handled, handle } = recorder();
    await sequencer().receive(id, 1, '1', handle);
    await sequencer().receive(id, 1, 'again', handle);
    await sequencer().receive(id, 2, '2', handle);
    expect(handled).toEqual(['1', '2']);
    expect(await inbox.parked(id, 1, 10)).toEqual([]);
  });

  it('closing waits for the holder, handles what the client sent before the close, then forgets the inbox', async () => {
    const id = connectionId();
    const log: string[] = [];
    let closing: Promise<void> | undefined;
    const handle: HandleMessages = async (bodies) => {
      if (bodies[0] === '1') {
        // While the first holds the lease: the second parks, and the close begins (and waits).
        await sequencer().receive(id, 2, '2', handle);
        closing = sequencer().close(id, handle, async () => void log.push('closed'));
        await sleep(50);
      }
      log.push(...bodies);
    };
    await sequencer().receive(id, 1, '1', handle);
    await closing;
    expect(log).toEqual(['1', '2', 'closed']);
    expect(await inbox.parked(id, 1, 10)).toEqual([]);
    expect(await inbox.acquire(id, 'after', 1000)).toMatchObject({ next: 1 });
  });
});

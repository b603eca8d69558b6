/**
 * The ConnectionInbox's contract, against DynamoDB Local: the API Gateway door's inbound order
 * (shared/broker/sequencer.ts drives it; test/integration/inbox.test.ts runs the sequencer over it).
 * One holder of a connection's lease at a time, taken over once the lease lapses; only the holder
 * moves `next` or lets go; a message parked while the lease is held is reported to the holder as
 * it lets go, and so is a takeover marked while its first message is handled; parked messages
 * come back in sequence order.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DynamoConnectionInbox } from '../../../shared/store/dynamo-inbox';
import { storeFixtureForFile } from '../store-fixture';

let now = Date.now();
const fixture = await storeFixtureForFile();
const inbox = new DynamoConnectionInbox({ client: fixture.documentClient, tableName: fixture.tables.inbox, now: () => now });

const connectionId = () => randomBytes(8).toString('base64');
const sequences = (parked: ReadonlyArray<{ sequence: number }>) => parked.map((m) => m.sequence);

describe('the lease', () => {
  it('is held by one at a time, taken over once it lapses; a connection\'s first holder finds 1 next', async () => {
    const id = connectionId();
    expect(await inbox.acquire(id, 'a', 1_000)).toEqual({ token: 'a', next: 1 });
    expect(await inbox.acquire(id, 'b', 1_000)).toBeUndefined();
    now += 1_001;
    expect(await inbox.acquire(id, 'b', 1_000)).toEqual({ token: 'b', next: 1 });
    expect(await inbox.acquire(id, 'a', 1_000)).toBeUndefined();
  });

  it('with onlyIfNext, is taken only by the message expected next', async () => {
    const id = connectionId();
    expect(await inbox.acquire(id, 'a', 1_000, 2)).toBeUndefined();
    expect(await inbox.acquire(id, 'a', 1_000, 1)).toEqual({ token: 'a', next: 1 });
    expect(await inbox.release(id, 'a', 3)).toBe('released');
    expect(await inbox.acquire(id, 'b', 1_000, 2)).toBeUndefined();
    expect(await inbox.acquire(id, 'b', 1_000, 3)).toEqual({ token: 'b', next: 3 });
  });

  it('only its holder advances it (renewing it) or lets it go; a holder whose lease was taken over learns so', async () => {
    const id = connectionId();
    await inbox.acquire(id, 'a', 1_000);
    now += 1_001;
    await inbox.acquire(id, 'b', 1_000);
    expect(await inbox.advance(id, 'a', 5, 1_000)).toBe(false);
    expect(await inbox.release(id, 'a', 5)).toBe('lost');
    now += 900;
    expect(await inbox.advance(id, 'b', 4, 1_000)).toBe(true);
    // Renewed: still b's after its first lease would have run out.
    now += 900;
    expect(await inbox.acquire(id, 'c', 1_000)).toBeUndefined();
    expect(await inbox.release(id, 'b', 6)).toBe('released');
    expect(await inbox.acquire(id, 'c', 1_000)).toEqual({ token: 'c', next: 6 });
  });

  it('a message parked while the lease is held is reported to the holder as it lets go; with no holder, markPending refuses', async () => {
    const id = connectionId();
    expect(await inbox.markPending(id)).toBe(false);
    await inbox.acquire(id, 'a', 1_000);
    expect(await inbox.markPending(id)).toBe(true);
    expect(await inbox.release(id, 'a', 2)).toBe('pending');
    // Reported once: the next holder lets go plainly.
    await inbox.acquire(id, 'b', 1_000);
    expect(await inbox.release(id, 'b', 2)).toBe('released');
    // A lapsed lease counts as no holder.
    await inbox.acquire(id, 'c', 1_000);
    now += 1_001;
    expect(await inbox.markPending(id)).toBe(false);
  });

  it('a takeover marked while the first message (the CONNECT) is handled is reported to the holder as it lets go, once, over a pending mark', async () => {
    const id = connectionId();
    await inbox.acquire(id, 'a', 1_000);
    expect(await inbox.markTakenOver(id, 5)).toBe(true);
    expect(await inbox.markPending(id)).toBe(true);
    expect(await inbox.release(id, 'a', 2)).toEqual({ takenOver: 5 });
    await inbox.acquire(id, 'b', 1_000);
    expect(await inbox.release(id, 'b', 2)).toBe('released');
  });

  it('a takeover is not marked once the first message was handled, nor with no holder, nor on a connection without an inbox: the caller closes it', async () => {
    const handled = connectionId();
    await inbox.acquire(handled, 'a', 1_000);
    expect(await inbox.advance(handled, 'a', 2, 1_000)).toBe(true);
    expect(await inbox.markTakenOver(handled, 4)).toBe(false);
    expect(await inbox.release(handled, 'a', 2)).toBe('released');
    const notHeld = connectionId();
    await inbox.acquire(notHeld, 'a', 1_000);
    now += 1_001;
    expect(await inbox.markTakenOver(notHeld, 5)).toBe(false);
    const none = connectionId();
    expect(await inbox.markTakenOver(none, 5)).toBe(false);
    expect(await inbox.parked(none, 1, 10)).toEqual([]);
  });
});

describe('parked messages', () => {
  it('come back in sequence order from the number asked for, at most the limit, until removed', async () => {
    const id = connectionId();
    for (const sequence of [3, 1, 10, 2]) await inbox.park(id, sequence, `body ${sequence}`);
    expect(sequences(await inbox.parked(id, 1, 10))).toEqual([1, 2, 3, 10]);
    expect(await inbox.parked(id, 2, 2)).toEqual([
      { sequence: 2, body: 'body 2', parkedAt: now },
      { sequence: 3, body: 'body 3', parkedAt: now },
    ]);
    await inbox.removeParked(id, [1, 2]);
    expect(sequences(await inbox.parked(id, 1, 10))).toEqual([3, 10]);
    expect(await inbox.parked(connectionId(), 1, 10)).toEqual([]);
  });

  it('go with the lease when the connection is forgotten', async () => {
    const id = connectionId();
    await inbox.acquire(id, 'a', 60_000);
    await inbox.release(id, 'a', 4);
    for (let sequence = 5; sequence < 40; sequence++) await inbox.park(id, sequence, 'x');
    await inbox.forget(id);
    expect(await inbox.parked(id, 1, 100)).toEqual([]);
    expect(await inbox.acquire(id, 'b', 1_000)).toEqual({ token: 'b', next: 1 });
  });
});

/**
 * The ReceiptStore's contract, against DynamoDB Local: QoS 2 PUBLISHes received from a client and
 * remembered until PUBREL [MQTT-4.3.3]. A packet id is received once (a resend, or a handler racing
 * another, gets the same receipt) until it is released; after PUBREL it is free for a new message.
 */
import { describe, expect, it } from 'vitest';
import { uniqueClientId, storeFixtureForFile } from '../store-fixture';

const fixture = await storeFixtureForFile();
const store = fixture.store;

describe('QoS 2 receipts', () => {
  it('[MQTT-4.3.3-2] an incoming QoS 2 packet id is received once until released, and marked routed', async () => {
    const clientId = uniqueClientId('qos2-in');
    const first = await store.receipts.receiveQos2(clientId, 7);
    expect(first.routed).toBe(false);
    // A resend before routing finished (the handler died): the same receipt, to route again.
    expect(await store.receipts.receiveQos2(clientId, 7)).toEqual(first);
    await store.receipts.markQos2Routed(clientId, 7);
    expect(await store.receipts.receiveQos2(clientId, 7)).toEqual({ ...first, routed: true });
    expect((await store.receipts.receiveQos2(clientId, 8)).id).not.toBe(first.id);
    expect(await store.receipts.releaseIncomingQos2(clientId, 7)).toBe(true);
    expect(await store.receipts.releaseIncomingQos2(clientId, 7)).toBe(false);
    // After PUBREL the id is free for a new message, with a receipt of its own.
    const again = await store.receipts.receiveQos2(clientId, 7);
    expect(again.routed).toBe(false);
    expect(again.id).not.toBe(first.id);
  });

  it('two handlers racing on one incoming QoS 2 packet id get the same receipt', async () => {
    const clientId = uniqueClientId('qos2-race');
    const receipts = await Promise.all(Array.from({ length: 8 }, () => store.receipts.receiveQos2(clientId, 42)));
    expect(new Set(receipts.map((r) => r.id)).size).toBe(1);
  });

  it('countIncomingQos2 counts the packet ids received and not yet released', async () => {
    const clientId = uniqueClientId('qos2-count');
    expect(await store.receipts.countIncomingQos2(clientId)).toBe(0);
    for (const packetId of [1, 2, 3]) await store.receipts.receiveQos2(clientId, packetId);
    await store.receipts.receiveQos2(clientId, 2);
    expect(await store.receipts.countIncomingQos2(clientId)).toBe(3);
    await store.receipts.releaseIncomingQos2(clientId, 1);
    expect(await store.receipts.countIncomingQos2(clientId)).toBe(2);
  });

  it('marking an unknown packet id routed remembers nothing', async () => {
    const clientId = uniqueClientId('qos2-unknown');
    await store.receipts.markQos2Routed(clientId, 5);
    expect(await store.receipts.countIncomingQos2(clientId)).toBe(0);
    expect((await store.receipts.receiveQos2(clientId, 5)).routed).toBe(false);
  });
});

/**
 * [MQTT-3.14.0-1] The server must not send DISCONNECT before CONNACK. In a takeover race the
 * winner's handler may POST DISCONNECT 0x8E (and DELETE) to the losing connection before the
 * loser's own handler has delivered its CONNACK; the listener holds them until it has.
 */
import { describe as suite, expect, it } from 'vitest';
import { encodePacket } from '../../shared/protocol/codec';
import { ClientConnection } from '../../shared/listener/client-connection';
import type { Transport } from '../../shared/listener/transport';

function connection() {
  const written: string[] = [];
  let closed = false;
  const transport: Transport = {
    write: (bytes) => void written.push(kind(bytes)),
    close: (lastBytes) => {
      if (lastBytes) written.push(kind(lastBytes));
      closed = true;
    },
    abort: () => void (closed = true),
    remoteAddress: '127.0.0.1',
    bufferedBytes: () => 0,
    framingBytes: 0,
  };
  const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const limits = { maximumPacketSize: 1024, connectTimeoutMs: 60_000, maxBatchPackets: 10, keepAliveLimit: 300, maxQueuedBytes: 1 << 20, maxOutboundBytes: 1 << 20, maxConnectPacketSize: 1024 };
  const client = new ClientConnection('c1', transport, { invoke: async () => undefined }, limits, silent, () => undefined);
  return { client, written, isClosed: () => closed };
}

const kind = (bytes: Buffer): string => ({ 2: 'connack', 14: 'disconnect' })[bytes[0]! >> 4] ?? 'other';
const connack = encodePacket({ cmd: 'connack', reasonCode: 0, sessionPresent: false }, 5);
const takenOver = encodePacket({ cmd: 'disconnect', reasonCode: 0x8e }, 5);

suite('a DISCONNECT that overtakes the CONNACK', () => {
  it('is held, with the close behind it, until the CONNACK has gone out', () => {
    const { client, written, isClosed } = connection();
    client.deliver(takenOver);
    client.serverClose('closed through @connections');
    expect(written).toEqual([]);
    expect(isClosed()).toBe(false);
    client.deliver(connack);
    expect(written).toEqual(['connack', 'disconnect']);
    expect(isClosed()).toBe(true);
  });

  it('after the CONNACK, goes straight out', () => {
    const { client, written, isClosed } = connection();
    client.deliver(connack);
    client.deliver(takenOver);
    client.serverClose('closed through @connections');
    expect(written).toEqual(['connack', 'disconnect']);
    expect(isClosed()).toBe(true);
  });
});

/**
 * Property-based tests (fast-check) over the decode and handle path, bounded in time:
 * - the codec and the framer fail only with MqttProtocolError, whatever the bytes;
 * - handlePackets, with the real DynamoDB store, answers any batch (a valid CONNECT, then hostile
 *   bytes) without an unexpected error: every byte it sends decodes as packets of the client's
 *   version, a DISCONNECT it sends carries an error reason code, nothing is sent after a close,
 *   and nothing fails unexpectedly (no error-level log line).
 * The gateway here (test/support/recording-gateway.ts) records what the handler sends instead of
 * delivering it: what it records is what a client would receive.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BrokerDeps } from '../../shared/broker/context';
import { handleConnectionClosed } from '../../shared/broker/connection-closed';
import { handlePackets } from '../../shared/broker/packets';
import { decodePacket } from '../../shared/protocol/codec';
import { MqttFramer } from '../../shared/protocol/framer';
import { MqttProtocolError } from '../../shared/protocol/reason-codes';
import { connectBytes, hostileBytes, type Version } from '../support/hostile-packets';
import { recordingDeps, RecordingGateway } from '../support/recording-gateway';

const TIME_LIMIT_MS = Number(process.env.PROPERTY_MS ?? 3_000);
const version = fc.constantFrom<Version>(4, 5);

/** Runs a property until it has had `ms` of time (at least a few runs), and returns how many it tried. */
async function forAbout<T>(ms: number, arbitrary: fc.Arbitrary<T>, check: (value: T) => void | Promise<void>): Promise<number> {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(arbitrary, async (value) => {
      runs++;
      await check(value);
    }),
    { interruptAfterTimeLimit: ms, numRuns: 1_000_000, markInterruptAsFailure: false },
  );
  return runs;
}

describe('codec and framer (pure)', () => {
  it('decodePacket fails only with MqttProtocolError, for random and for mutated valid bytes', async () => {
    const runs = await forAbout(1_500, version.chain((v) => fc.tuple(fc.constant(v), hostileBytes(v))), ([v, bytes]) => {
      try {
        decodePacket(bytes, v);
      } catch (error) {
        expect(error).toBeInstanceOf(MqttProtocolError);
      }
    });
    console.log(`decodePacket: ${runs} hostile inputs tried`);
    expect(runs).toBeGreaterThan(0);
  });

  it('the framer, fed any bytes in any chunks, fails only with MqttProtocolError and never frames more than it was given or the limit', async () => {
    const input = fc.tuple(
      fc.array(version.chain((v) => hostileBytes(v)), { minLength: 1, maxLength: 5 }),
      fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 10 }),
    );
    const runs = await forAbout(1_000, input, ([parts, cuts]) => {
      const stream = Buffer.concat(parts);
      const framer = new MqttFramer(256);
      const framed: Buffer[] = [];
      try {
        for (let at = 0, i = 0; at < stream.length; i++) {
          const size = cuts[i % cuts.length]!;
          framed.push(...framer.push(stream.subarray(at, at + size)));
          at += size;
        }
      } catch (error) {
        expect(error).toBeInstanceOf(MqttProtocolError);
      }
      for (const frame of framed) expect(frame.length).toBeLessThanOrEqual(256);
      expect(Buffer.concat(framed).equals(stream.subarray(0, Buffer.concat(framed).length))).toBe(true);
    });
    console.log(`framer: ${runs} chunked streams tried`);
  });
});

describe('handlePackets over DynamoDB Local', () => {
  let deps: BrokerDeps;
  const gateway = new RecordingGateway();
  const errors: string[] = [];

  beforeAll(async () => {
    deps = await recordingDeps('prop', gateway, {
      config: { maximumPacketSize: 1024 },
      log: { info: () => undefined, warn: () => undefined, error: (message, fields) => errors.push(`${message} ${JSON.stringify(fields)}`) },
    });
  });
  it('any batch after a valid CONNECT is answered with well-formed packets and closes with an error reason code', async () => {
    let n = 0;
    const batch = version.chain((v) => fc.tuple(fc.constant(v), fc.array(hostileBytes(v), { minLength: 1, maxLength: 4 })));
    const runs = await forAbout(TIME_LIMIT_MS, batch, async ([v, hostile]) => {
      const connectionId = `prop-${process.pid}-${++n}`;
      await handlePackets(deps, connectionId, [connectBytes(v, connectionId)]);
      // The listener frames the stream; whatever it cannot frame it never hands over.
      const frames: Buffer[] = [];
      try {
        frames.push(...new MqttFramer(1024).push(Buffer.concat(hostile)));
      } catch {
        // the rest is the listener's 'failed' event, tested end to end
      }
      await handlePackets(deps, connectionId, frames);

      const received = gateway.packets(connectionId, v);
      expect(received[0]).toMatchObject({ cmd: 'connack' });
      for (const packet of received.filter((p) => p.cmd === 'disconnect')) {
        expect(v).toBe(5);
        expect(packet.reasonCode).toBeGreaterThanOrEqual(0x80);
      }
      expect(gateway.afterClose).toEqual([]);
      // The client goes away, as the listener reports it, so later runs do not deliver to it.
      await handleConnectionClosed(deps, connectionId);
      expect(errors).toEqual([]);
    });
    console.log(`handlePackets: ${runs} hostile batches tried against DynamoDB Local`);
    expect(runs).toBeGreaterThan(0);
  });
});

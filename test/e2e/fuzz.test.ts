/**
 * A raw-socket fuzzer against the running listener, bounded in time: many connections send a
 * valid CONNECT and then hostile bytes (random, or mutated valid packets). Throughout, a
 * well-behaved client publishes and must receive every one of its messages; every input that
 * mqtt-packet itself cannot parse must get its connection closed (by a 5.0 DISCONNECT with an
 * error reason code, if any is sent); and the broker process must survive to accept new clients.
 */
import fc from 'fast-check';
import mqttPacket, { type Packet } from 'mqtt-packet';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { collect, connectClient, endAll, eventually } from '../support/clients';
import { useHarness } from '../support/harness';
import { connectBytes, hostileBytes, mqttPacketRejects, type Version } from '../support/hostile-packets';

function startsWithWholeNonConnect(bytes: Buffer, version: Version): boolean {
  const parser = mqttPacket.parser({ protocolVersion: version });
  let first: Packet | undefined;
  parser.on('packet', (packet: Packet) => (first ??= packet));
  parser.on('error', () => undefined);
  parser.parse(bytes);
  return first !== undefined && first.cmd !== 'connect';
}

const FUZZ_MS = 4_000;
const PARALLEL = 8;
const KEEP_ALIVE = 5;
const harness = useHarness({ maximumPacketSize: 16 * 1024, connectTimeoutMs: 1_000 });

interface Outcome {
  readonly closed: boolean;
  readonly packets: Packet[];
  readonly connackOk: boolean;
}

/** One connection: CONNECT (or not), then the hostile bytes; waits for the close when one is due. */
async function attack(version: Version, bytes: Buffer, n: number, mustClose: boolean, withConnect: boolean): Promise<Outcome> {
  const socket = net.connect(harness().mqttPort, '127.0.0.1');
  const packets: Packet[] = [];
  const parser = mqttPacket.parser({ protocolVersion: version });
  parser.on('packet', (packet: Packet) => packets.push(packet));
  parser.on('error', () => undefined);
  let closed = false;
  socket.on('data', (chunk) => parser.parse(chunk));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  if (withConnect) {
    socket.write(connectBytes(version, `fuzz-${process.pid}-${n}`, KEEP_ALIVE));
    await eventually(() => closed || packets.some((p) => p.cmd === 'connack'), 'CONNACK', 10_000);
  }
  const connackOk = !withConnect || packets.some((p) => p.cmd === 'connack' && ((p.reasonCode ?? p.returnCode ?? 0) as number) === 0);
  if (!closed) socket.write(bytes);
  // Even a half-sent packet is closed at 1.5 times the keep-alive; a malformed one must be closed
  const deadline = Date.now() + (mustClose ? KEEP_ALIVE * 1500 + 3_000 : 150);
  while (!closed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  socket.destroy();
  return { closed, packets, connackOk };
}

describe('raw-socket fuzzer against the listener', () => {
  it('survives hostile input; malformed connections close; a bystander keeps its service', async () => {
    const bystanderSub = await connectClient(harness().mqttUrl, { protocolVersion: 5 });
    const bystanderPub = await connectClient(harness().mqttUrl, { protocolVersion: 5 });
    const got = collect(bystanderSub);
    const topic = `fuzz/bystander/${process.pid}`;
    await bystanderSub.subscribeAsync(topic, { qos: 1 });
    let published = 0;
    const publishing = (async () => {
      const until = Date.now() + FUZZ_MS;
      while (Date.now() < until) {
        await bystanderPub.publishAsync(topic, String(published++), { qos: 1 });
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();

    // Half the inputs come after a CONNECT, half instead of one (the path before CONNECT).
    const arbitrary = fc.constantFrom<Version>(4, 5).chain((v) => fc.tuple(fc.constant(v), hostileBytes(v), fc.boolean()));
    const seed = Date.now() % 2 ** 31;
    console.log(`raw-socket fuzzer seed: ${seed}`);
    let tried = 0;
    let malformed = 0;
    const failures: string[] = [];
    const until = Date.now() + FUZZ_MS;
    // A pool of connections, each taking the next input as soon as it is done with one.
    const worker = async (): Promise<void> => {
      while (Date.now() < until) {
        const n = tried++;
        const [[version, bytes, withConnect]] = fc.sample(arbitrary, { numRuns: 1, seed: seed + n }) as [[Version, Buffer, boolean]];
        {
          // [MQTT-3.1.0-1] before CONNECT, a whole packet that is not a CONNECT closes the connection too
          const mustClose = mqttPacketRejects(bytes, version) || (!withConnect && startsWithWholeNonConnect(bytes, version));
          if (mustClose) malformed++;
          const outcome = await attack(version, bytes, n, mustClose, withConnect);
          const input = `v${version} ${bytes.toString('hex')}`;
          if (mustClose && !outcome.closed) failures.push(`not closed: ${input}`);
          const disconnect = outcome.packets.find((p) => p.cmd === 'disconnect');
          // MQTT 5.0 4.13: a server closes for a malformed packet or protocol error with an error reason code
          if (disconnect && ((disconnect.reasonCode ?? 0) < 0x80 || version !== 5)) failures.push(`DISCONNECT ${disconnect.reasonCode}: ${input}`);
          if (!outcome.connackOk) failures.push(`no CONNACK before the hostile bytes: ${input}`);
        }
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    await publishing;
    console.log(`raw-socket fuzzer: ${tried} hostile inputs tried over ${PARALLEL} parallel connections (${malformed} that must close the connection), bystander sent ${published} messages`);

    expect(failures.slice(0, 5)).toEqual([]);
    await eventually(() => got.length === published, `all ${published} bystander messages`, 15_000);
    expect(got.map((m) => Number(m.payload))).toEqual([...Array(published).keys()]);
    // The process is alive and still accepts clients.
    const late = await connectClient(harness().mqttUrl, { protocolVersion: 4 });
    expect(late.connected).toBe(true);
    await endAll(bystanderSub, bystanderPub, late);
  });
});

/**
 * [MQTT-3.14.0-1] no DISCONNECT before the CONNACK, when a CONNECT takes over an API Gateway
 * connection whose own CONNECT is still being handled (shared/broker/takeover.ts): the taker
 * marks the connection's inbox and sends nothing to it; the connection's own invocation, letting
 * go of its inbox after its CONNACK went out, sends the DISCONNECT 0x8E (5.0) and closes it.
 * The two invocations are interleaved by hand here; test/e2e/apigw-takeover-race.test.ts races them.
 */
import mqttPacket, { type Packet } from 'mqtt-packet';
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RuntimeDeps } from '../../functions/runtime';
import { handlePackets } from '../../shared/broker/packets';
import { Sequencer } from '../../shared/broker/sequencer';
import { newListenerConnectionId } from '../../shared/gateway/connection-id';
import { ReasonCode } from '../../shared/protocol/reason-codes';
import { recordingDeps, RecordingGateway } from '../support/recording-gateway';

const gateway = new RecordingGateway();
let deps: RuntimeDeps;
beforeAll(async () => {
  deps = (await recordingDeps('takeover-order', gateway, { log: { info: () => undefined, warn: () => undefined, error: () => undefined } })) as RuntimeDeps;
});

const run = randomBytes(3).toString('hex');
let n = 0;
const apiGatewayId = () => randomBytes(9).toString('base64');
const connect = (version: 4 | 5) => {
  const clientId = `race-${run}-${++n}`;
  return mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clientId, clean: true, keepalive: 60 } as Packet, { protocolVersion: version });
};
const cmds = (connectionId: string, version: 4 | 5) => gateway.packets(connectionId, version).map((p) => p.cmd);

/**
 * The loser's CONNECT handled through its inbox, as `$default` does; while its invocation still
 * holds the lease (its CONNACK already sent), the winner's CONNECT takes the session.
 */
async function race(version: 4 | 5, winner: string): Promise<{ loser: string; beforeLettingGo: string[] }> {
  const loser = apiGatewayId();
  const packet = connect(version);
  let beforeLettingGo: string[] = [];
  await new Sequencer(deps, deps.inbox).receive(loser, 1, packet.toString('base64'), async ([body]) => {
    await handlePackets(deps, loser, [Buffer.from(body!, 'base64')], version);
    await handlePackets(deps, winner, [packet], version);
    beforeLettingGo = cmds(loser, version);
  });
  return { loser, beforeLettingGo };
}

describe('a takeover of an API Gateway connection whose CONNECT is being handled', () => {
  for (const [door, winner] of [['API Gateway', apiGatewayId], ['the listener', () => newListenerConnectionId('http://127.0.0.1:9')]] as const) {
    it(`[MQTT-3.14.0-1] 5.0, taken over from ${door}: the loser's own invocation sends DISCONNECT 0x8E after its CONNACK, and closes it`, async () => {
      const { loser, beforeLettingGo } = await race(5, winner());
      expect(beforeLettingGo).toEqual(['connack']);
      expect(cmds(loser, 5)).toEqual(['connack', 'disconnect']);
      expect((gateway.packets(loser, 5)[1] as { reasonCode?: number }).reasonCode).toBe(ReasonCode.SessionTakenOver);
      expect(gateway.closed.has(loser)).toBe(true);
    });
  }

  it('[MQTT-3.1.4-2] 3.1.1: the loser gets its CONNACK, then is closed', async () => {
    const { loser, beforeLettingGo } = await race(4, apiGatewayId());
    expect(beforeLettingGo).toEqual(['connack']);
    expect(cmds(loser, 4)).toEqual(['connack']);
    expect(gateway.closed.has(loser)).toBe(true);
  });

  it('the mark is read once: the connection\'s next message lets go plainly', async () => {
    const { loser } = await race(5, apiGatewayId());
    gateway.closed.delete(loser);
    await new Sequencer(deps, deps.inbox).receive(loser, 2, mqttPacket.generate({ cmd: 'pingreq' }).toString('base64'), async () => undefined);
    expect(gateway.closed.has(loser)).toBe(false);
    expect(cmds(loser, 5)).toEqual(['connack', 'disconnect']);
  });
});

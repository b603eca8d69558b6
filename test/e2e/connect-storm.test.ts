/**
 * A connect storm: a fleet of devices connecting at once (after an outage, or a deployment) is
 * absorbed: every one is accepted, none refused with 0x88 / return code 3 because DynamoDB calls
 * timed out under the burst. Real sockets against the harness (listener, handlers, DynamoDB Local).
 */
import type { IConnackPacket } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { RawConnection } from '../support/clients';
import { useHarness } from '../support/harness';

const harness = useHarness();
const DEVICES = 300;
const AT_ONCE = 100;

describe('connect storm', () => {
  it(`${DEVICES} devices connecting ${AT_ONCE} at a time: all get CONNACK 0, and stay connected`, { timeout: 240_000 }, async () => {
    const run = `${process.pid}-${Date.now()}`;
    const devices: RawConnection[] = [];
    const codes: number[] = [];
    for (let wave = 0; wave < DEVICES / AT_ONCE; wave++) {
      const connections = await Promise.all(Array.from({ length: AT_ONCE }, () => RawConnection.tcp(harness().mqttPort, 4)));
      connections.forEach((device, i) => device.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: `storm-${run}-${wave}-${i}`, clean: true, keepalive: 120 }));
      const connacks = await Promise.all(connections.map((device) => device.next('connack', 60_000) as Promise<IConnackPacket>));
      codes.push(...connacks.map((connack) => connack.returnCode ?? -1));
      devices.push(...connections);
    }
    expect(codes.filter((code) => code !== 0)).toEqual([]);
    expect(codes).toHaveLength(DEVICES);
    // Accepted for real: each answers a PINGREQ, none was closed.
    devices.forEach((device) => device.send({ cmd: 'pingreq' }));
    await Promise.all(devices.map((device) => device.next('pingresp', 30_000)));
    expect(devices.filter((device) => device.closed)).toHaveLength(0);
    devices.forEach((device) => device.send({ cmd: 'disconnect' }));
  });
});

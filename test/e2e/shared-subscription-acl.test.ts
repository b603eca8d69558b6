/**
 * Shared subscriptions under an ACL, with two users: the backend, whose rules let it join the
 * share `workers` on jobs/#, and a reader of jobs/#. The reader still reads every job, but
 * cannot join the backend's share and take a part of its work (share names are global, so
 * without this any reader could).
 */
import type { Packet } from 'mqtt-packet';
import { beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../shared/security/password';
import { collect, connectClient, endAll, eventually, RawConnection, settle } from '../support/clients';
import { useHarness } from '../support/harness';

const harness = useHarness({ security: { allowAnonymous: false } });

beforeAll(async () => {
  const store = harness().securityStore;
  const users = [
    { username: 'backend', password: 'backend-password', acl: ['readwrite jobs/#', 'read $share/workers/jobs/#'] },
    { username: 'reader', password: 'reader-password', acl: ['read jobs/#', 'read $share/%u/jobs/#'] },
  ];
  await Promise.all(users.map(async ({ password, ...user }) => store.putUser({ ...user, passwordHash: await hashPassword(password, { logN: 12, r: 8, p: 1 }) })));
});

describe('shared subscriptions are governed by the ACL', () => {
  it("the backend's share gets every job, the reader a copy of each; the reader's attempt to join takes none", async () => {
    const backend = await connectClient(harness().mqttUrl, { protocolVersion: 5, username: 'backend', password: 'backend-password', clientId: 'backend-worker' });
    const reader = await connectClient(harness().mqttUrl, { protocolVersion: 5, username: 'reader', password: 'reader-password', clientId: 'reader-1' });
    try {
      const work = collect(backend);
      const copies = collect(reader);
      await backend.subscribeAsync('$share/workers/jobs/#', { qos: 1 });
      await expect(reader.subscribeAsync('$share/workers/jobs/#', { qos: 1 })).rejects.toThrow(/Not authorized/);
      await reader.subscribeAsync('jobs/#', { qos: 1 });
      for (let n = 1; n <= 6; n++) await backend.publishAsync(`jobs/${n}`, `job ${n}`, { qos: 1 });
      await eventually(() => work.length === 6 && copies.length === 6, `every job to the share and to the reader (${work.length} and ${copies.length})`);
      await settle(300);
      expect(work.map((m) => m.topic).sort()).toEqual([1, 2, 3, 4, 5, 6].map((n) => `jobs/${n}`));
      expect(copies).toHaveLength(6);
    } finally {
      await endAll(backend, reader);
    }
  });

  it('[MQTT-3.9.3-1] a reader of jobs/# is refused $share/workers/jobs/# (5.0 0x87, 3.1.1 0x80); the backend, whose rules name the share, is granted it', async () => {
    for (const [version, refused] of [[5, 0x87], [4, 0x80]] as const) {
      for (const [username, expected] of [['backend', [1, 1, refused]], ['reader', [refused, 1, 1]]] as const) {
        const raw = await RawConnection.tcp(harness().mqttPort, version);
        raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clean: true, keepalive: 30, clientId: `${username}-${version}`, username, password: Buffer.from(`${username}-password`) } as Packet);
        await raw.next('connack');
        raw.send({
          cmd: 'subscribe',
          messageId: 3,
          subscriptions: [
            { topic: '$share/workers/jobs/#', qos: 1 },
            { topic: 'jobs/#', qos: 1 },
            { topic: '$share/reader/jobs/#', qos: 1 }, // a share named after the reader: its own
          ],
        } as Packet);
        expect(await raw.next('suback'), `${username} ${version}`).toMatchObject({ messageId: 3, granted: expected });
        raw.close();
      }
    }
  });
});

/**
 * Server-sent events end to end: the real curl binary (`curl -N`) reads GET /events, on the
 * harness's HTTP door and on the listener's WebSocket port (the cloud's door for it), while
 * Debian's mosquitto_pub and MQTT.js publish. Authentication and the ACL are the CONNECT's and
 * the SUBSCRIBE's.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAcl } from '../../shared/security/acl';
import { hashPassword } from '../../shared/security/password';
import { connectClient, eventually } from '../support/clients';
import { curl, curlStream, mosquittoPub } from '../support/command-line-clients';
import { useHarness } from '../support/harness';

const HEARTBEAT_MS = 300;
const harness = useHarness({
  httpPort: 0,
  eventHeartbeatMs: HEARTBEAT_MS,
  security: { allowAnonymous: false, acl: parseAcl(['readwrite demo/#', 'write private/#'].join('\n')) },
});

let counter = 0;
const unique = (name: string): string => `${name}/${process.pid}-${++counter}`;
const alice = ['-u', 'alice:alice-password'];
const pubAs = ['-u', 'alice', '-P', 'alice-password'];

beforeAll(async () => {
  await harness().securityStore.putUser({ username: 'alice', passwordHash: await hashPassword('alice-password', { logN: 12, r: 8, p: 1 }) });
});

/** The events of a stream's text: each one's fields (data lines joined with LF, as EventSource joins them). */
function eventsOf(text: string): Array<{ id?: string; event?: string; data?: string }> {
  return text
    .split('\n\n')
    .filter((block) => block.split('\n').some((line) => line !== '' && !line.startsWith(':')))
    .map((block) => {
      const fields: { id?: string; event?: string; data?: string } = {};
      for (const line of block.split('\n')) {
        const [name, value] = [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)];
        if (name === 'data') fields.data = fields.data === undefined ? value : `${fields.data}\n${value}`;
        else if (name === 'id' || name === 'event') fields[name] = value;
      }
      return fields;
    });
}

const doors = [
  { name: 'the HTTP door (HTTP_PORT)', base: () => harness().httpUrl! },
  { name: "the listener's WebSocket port", base: () => `http://127.0.0.1:${harness().wsPort}` },
];

describe('GET /events', () => {
  for (const door of doors) {
    it(`on ${door.name}: curl -N '/events?filter=demo/%23' prints the event when mosquitto_pub publishes to demo/y`, async () => {
      const root = unique('demo');
      const stream = await curlStream(`${door.base()}/events?filter=${encodeURIComponent(`${root}/#`)}`, alice);
      try {
        expect(await mosquittoPub(harness().mqttPort, [...pubAs, '-t', `${root}/y`, '-m', 'hello from mosquitto'])).toBe(0);
        await eventually(() => eventsOf(stream.output()).length === 1, 'the event');
        const [event] = eventsOf(stream.output());
        expect(event).toEqual({ id: expect.stringMatching(/\S/), event: `${root}/y`, data: 'hello from mosquitto' });
      } finally {
        stream.stop();
      }
    });
  }

  it('the response is text/event-stream, with heartbeat comments, and each event its own id', async () => {
    const root = unique('demo');
    const stream = await curlStream(`${harness().httpUrl}/events?filter=${encodeURIComponent(`${root}/#`)}`, ['-i', ...alice]);
    try {
      const publisher = await connectClient(harness().mqttUrl, { username: 'alice', password: 'alice-password' });
      await publisher.publishAsync(`${root}/a`, 'one');
      await publisher.publishAsync(`${root}/b`, 'two');
      await publisher.endAsync();
      // curl -i: the status and headers, then the stream
      const body = (): string => stream.output().slice(stream.output().indexOf('\r\n\r\n') + 4);
      await eventually(() => eventsOf(body()).length === 2 && body().includes(': heartbeat'), 'two events and a heartbeat');
      expect(stream.output()).toMatch(/^HTTP\/1\.1 200/);
      expect(stream.output().toLowerCase()).toContain('content-type: text/event-stream');
      const events = eventsOf(body());
      expect(events.map((e) => [e.event, e.data])).toEqual([[`${root}/a`, 'one'], [`${root}/b`, 'two']]);
      expect(new Set(events.map((e) => e.id)).size).toBe(2);
    } finally {
      stream.stop();
    }
  });

  it('several filters, one per filter parameter; a multi-line payload is several data lines; a binary one is base64 with its marker', async () => {
    const [a, b] = [unique('demo'), unique('demo')];
    const stream = await curlStream(`${harness().httpUrl}/events?filter=${encodeURIComponent(a)}&filter=${encodeURIComponent(`${b}/+`)}`, alice);
    try {
      const publisher = await connectClient(harness().mqttUrl, { username: 'alice', password: 'alice-password' });
      await publisher.publishAsync(a, 'line one\nline two');
      await publisher.publishAsync(`${b}/bin`, Buffer.from([0xff, 0x00, 0xfe]));
      await publisher.endAsync();
      await eventually(() => eventsOf(stream.output()).length === 2, 'both events');
      expect(stream.output()).toContain('data: line one\ndata: line two\n');
      expect(eventsOf(stream.output()).map((e) => [e.event, e.data])).toEqual([
        [a, 'line one\nline two'],
        [`${b}/bin`, `base64:${Buffer.from([0xff, 0x00, 0xfe]).toString('base64')}`],
      ]);
    } finally {
      stream.stop();
    }
  });

  it('[MQTT-3.3.1-9] on (re)connecting, with or without Last-Event-ID, the retained message of each matching topic comes first', async () => {
    const root = unique('demo');
    expect(await mosquittoPub(harness().mqttPort, [...pubAs, '-t', `${root}/state`, '-m', 'on', '-r', '-q', '1'])).toBe(0);
    for (const resume of [[], ['-H', 'Last-Event-ID: abc.7']]) {
      const stream = await curlStream(`${harness().httpUrl}/events?filter=${encodeURIComponent(`${root}/#`)}`, [...alice, ...resume]);
      try {
        await eventually(() => eventsOf(stream.output()).length === 1, 'the retained message');
        expect(eventsOf(stream.output())[0]).toMatchObject({ event: `${root}/state`, data: 'on' });
      } finally {
        stream.stop();
      }
    }
  });

  it('401 with WWW-Authenticate: Bearer (no Basic challenge, which a browser would prompt for) without credentials or with a wrong password', async () => {
    for (const credentials of [[], ['-u', 'alice:wrong']]) {
      const response = await curl([...credentials, `${harness().httpUrl}/events?filter=demo/%23`]);
      expect(response.status).toBe(401);
      expect(response.headers['www-authenticate']).toBe('Bearer realm="mqtt"');
    }
  });

  it('403 for a filter the ACL does not let the user read; 400 for an invalid filter or none', async () => {
    expect((await curl([...alice, `${harness().httpUrl}/events?filter=demo/%23&filter=private/%23`])).status).toBe(403);
    for (const query of ['?filter=demo/%23/x', '?filter=demo/a%2B', '']) {
      expect((await curl([...alice, `${harness().httpUrl}/events${query}`])).status, query).toBe(400);
    }
  });

  it('closing the stream closes its connection on the listener, as a socket close does', async () => {
    const before = harness().listenerStats().openSockets;
    const stream = await curlStream(`http://127.0.0.1:${harness().wsPort}/events?filter=demo/%23`, alice);
    expect(harness().listenerStats().openSockets).toBe(before + 1);
    stream.stop();
    await stream.exited;
    await eventually(() => harness().listenerStats().openSockets === before, 'the socket to be gone');
  });
});

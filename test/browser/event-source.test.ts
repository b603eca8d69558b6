/**
 * Server-sent events in real headless Chromium (Debian's): a page's `EventSource` on GET /events,
 * with a JWT as `?token=` (a browser cannot set headers on an EventSource), receiving what
 * mosquitto_pub publishes over TCP; a refused stream is not retried by the browser.
 */
import { SignJWT } from 'jose';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJwtVerifier } from '../../shared/security/jwt';
import { launchChromium } from '../support/chromium';
import { mosquittoPub } from '../support/command-line-clients';
import { useHarness } from '../support/harness';

const jwtSecret = 'event-source test secret, at least 32 bytes';
const harness = useHarness({ httpPort: 0, security: { allowAnonymous: false, jwt: createJwtVerifier({ secret: jwtSecret, audience: 'mqtt-broker' }) } });
const token = (sub: string): Promise<string> =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setAudience('mqtt-broker').setExpirationTime('5m').sign(new TextEncoder().encode(jwtSecret));

let browser: Browser;
let page: Page;
beforeAll(async () => {
  browser = await launchChromium();
  page = await browser.newPage();
  // A page of the HTTP door's own origin (its 404 page will do): the stream is same-origin.
  await page.goto(`${harness().httpUrl}/`);
});
afterAll(async () => {
  await page?.close();
  await browser?.close();
});

describe('EventSource in Chromium', () => {
  it('receives the events of its filter, named by topic, with an id, as mosquitto_pub publishes them', async () => {
    const root = `browser/${process.pid}`;
    const jwt = await token('page-user');
    await page.evaluate(
      ({ filter, jwt, topics }) =>
        new Promise<void>((resolve, reject) => {
          const g = globalThis as any;
          g.received = [];
          g.source = new EventSource(`/events?filter=${encodeURIComponent(filter)}&token=${jwt}`);
          // Named events: one listener per topic the page cares about (onmessage sees unnamed ones only).
          for (const topic of topics) g.source.addEventListener(topic, (e: MessageEvent) => g.received.push({ type: e.type, data: e.data, id: e.lastEventId }));
          g.source.onopen = () => resolve();
          g.source.onerror = () => reject(new Error('EventSource failed'));
        }),
      { filter: `${root}/#`, jwt, topics: [`${root}/temp`, `${root}/door`] },
    );
    for (const [topic, message] of [[`${root}/temp`, '21.5'], [`${root}/door`, 'open']]) {
      expect(await mosquittoPub(harness().mqttPort, ['-u', 'device', '-P', jwt, '-t', topic!, '-m', message!, '-q', '1'])).toBe(0);
    }
    await page.waitForFunction('received.length === 2', undefined, { timeout: 10_000, polling: 50 });
    const received = (await page.evaluate(() => (globalThis as any).received)) as Array<{ type: string; data: string; id: string }>;
    expect(received.map((e) => [e.type, e.data])).toEqual([
      [`${root}/temp`, '21.5'],
      [`${root}/door`, 'open'],
    ]);
    expect(received[0]!.id).not.toBe(received[1]!.id);
    await page.evaluate(() => (globalThis as any).source.close());
  });

  it('without a token the stream is refused (401) and the browser does not retry it', async () => {
    const state = await page.evaluate(
      () =>
        new Promise<number>((resolve) => {
          const source = new EventSource('/events?filter=browser/%23');
          source.onerror = () => setTimeout(() => resolve(source.readyState), 200);
        }),
    );
    expect(state).toBe(2); // EventSource.CLOSED: a non-200 answer fails the connection for good
  });
});

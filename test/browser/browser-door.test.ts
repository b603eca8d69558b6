/**
 * Real headless Chromium (Debian's) through the API Gateway emulator: a page using stock
 * MQTT.js with the browser adapter, and the web console that `npm start` serves, against
 * devices on TCP (mosquitto_pub, MQTT.js). The emulator's $default jitter is on.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, connectClient, eventually } from '../support/clients';
import { launchChromium } from '../support/chromium';
import { useHarness } from '../support/harness';

const harness = useHarness({ consolePort: 0, apigw: { jitterMs: 15 } });

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

let counter = 0;
const unique = (name: string): string => `${name}-${process.pid}-${++counter}`;

function mosquittoPub(args: string[]): Promise<number | null> {
  const child = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(harness().mqttPort), ...args], { stdio: 'ignore' });
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

/** Polls a condition (a JavaScript expression) evaluated in the page. */
async function inPage(page: Page, what: string, condition: string): Promise<void> {
  await page.waitForFunction(condition, undefined, { timeout: 10_000, polling: 50 }).catch(() => {
    throw new Error(`timed out waiting in the browser for ${what}`);
  });
}

describe('stock MQTT.js with the adapter, in Chromium', () => {
  let page: Page;
  beforeAll(async () => {
    const bundled = await build({
      entryPoints: [path.join(import.meta.dirname, 'adapter-page.ts')],
      bundle: true,
      format: 'iife',
      platform: 'browser',
      write: false,
      logLevel: 'silent',
    });
    page = await browser.newPage();
    // The console's origin: any page would do; WebSockets may go to another origin.
    await page.goto(`${harness().consoleUrl}/config.json`);
    await page.addScriptTag({ content: bundled.outputFiles[0]!.text });
  });
  afterAll(async () => {
    await page?.evaluate(() => (globalThis as any).door.end());
    await page?.close();
  });

  it('connects through the emulator, subscribes, and receives what mosquitto_pub sends over TCP, a 40 KB message whole', async () => {
    const root = unique('page');
    const connack = await page.evaluate((url) => (globalThis as any).door.connect(url, 5), harness().apigwUrl);
    // [MQTT-3.2.2-15] the broker tells the browser what one 32 KB frame carries
    expect(connack).toEqual({ maximumPacketSize: 24_564 });
    expect(await page.evaluate((filter) => (globalThis as any).door.subscribe(filter, 1), `${root}/#`)).toEqual([1]);

    expect(await mosquittoPub(['-t', `${root}/temp`, '-m', '21.5', '-q', '1'])).toBe(0);
    const large = 'L'.repeat(40 * 1024);
    expect(await mosquittoPub(['-t', `${root}/large`, '-m', large, '-q', '1'])).toBe(0);

    await inPage(page, 'both messages', 'door.received.length === 2');
    const received = (await page.evaluate(() => (globalThis as any).door.received)) as Array<{ topic: string; payload: string; qos: number }>;
    expect(received.map((m) => [m.topic, m.payload.length, m.qos])).toEqual([
      [`${root}/temp`, 4, 1],
      [`${root}/large`, large.length, 1],
    ]);
    expect(received[0]!.payload).toBe('21.5');
    expect(received[1]!.payload).toBe(large);
  });

  it('publishes what a device on TCP receives, in the order sent', async () => {
    const topic = unique('from-page');
    const device = await connectClient(harness().mqttUrl, { protocolVersion: 5 });
    const got = collect(device);
    await device.subscribeAsync(topic, { qos: 1 });
    await page.evaluate(async (t) => {
      // back to back, not awaiting each other: the adapter numbers them, the broker keeps the order
      await Promise.all(Array.from({ length: 5 }, (_, i) => (globalThis as any).door.publish(t, `m${i}`, 1)));
    }, topic);
    await eventually(() => got.length === 5, 'the five messages at the device');
    expect(got.map((m) => m.payload)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    await device.endAsync();
  });
});

describe('the web console, in Chromium', () => {
  let page: Page;
  beforeAll(async () => {
    page = await browser.newPage();
    await page.goto(harness().consoleUrl!);
    await inPage(page, 'the console to know the API Gateway URL', 'document.getElementById("url").value !== ""');
    await page.click('#connect');
    await page.waitForSelector('#status[data-state="connected"]');
  });
  afterAll(async () => {
    await page?.close();
  });

  it('connects through the API Gateway door, subscribes with a wildcard and shows a message mosquitto_pub sends', async () => {
    expect(await page.inputValue('#url')).toBe(harness().apigwUrl);
    const root = unique('console');
    await page.fill('#sub-filter', `${root}/+/temp`);
    await page.click('#subscribe');
    await page.waitForSelector(`#subscriptions li[data-filter="${root}/+/temp"]`);

    expect(await mosquittoPub(['-t', `${root}/kitchen/temp`, '-m', '21.5'])).toBe(0);
    const row = await page.waitForSelector(`#log li[data-topic="${root}/kitchen/temp"][data-direction="in"]`);
    expect(await row.textContent()).toContain('21.5');
  });

  it('publishes with QoS; a device on TCP receives it', async () => {
    const topic = unique('console-out');
    const device = await connectClient(harness().mqttUrl, { protocolVersion: 5 });
    const got = collect(device);
    await device.subscribeAsync(topic, { qos: 2 });
    await page.fill('#pub-topic', topic);
    await page.fill('#pub-payload', 'from the console');
    await page.selectOption('#pub-qos', '2');
    await page.click('#publish');
    await eventually(() => got.length === 1, "the console's message at the device");
    expect(got[0]).toMatchObject({ topic, payload: 'from the console', qos: 2 });
    await page.waitForSelector(`#log li[data-topic="${topic}"][data-direction="out"]`);
    await device.endAsync();
  });

  it('publishes retained (3.1.1 here); a device receives the retain flag, and the topic tree shows retained values', async () => {
    const root = unique('tree');
    await page.fill('#sub-filter', `${root}/#`);
    await page.click('#subscribe');
    await page.waitForSelector(`#subscriptions li[data-filter="${root}/#"]`);
    const device = await connectClient(harness().mqttUrl, { protocolVersion: 5 });
    const got = collect(device);
    await device.subscribeAsync(`${root}/#`, { qos: 1, rap: true });

    // A second console, speaking 3.1.1, publishes a retained message.
    const publisher = await browser.newPage();
    await publisher.goto(harness().consoleUrl!);
    await inPage(publisher, 'the console to load', 'document.getElementById("url").value !== ""');
    await publisher.selectOption('#version', '4');
    await publisher.click('#connect');
    await publisher.waitForSelector('#status[data-state="connected"]');
    await publisher.fill('#pub-topic', `${root}/lamp/state`);
    await publisher.fill('#pub-payload', 'on');
    await publisher.selectOption('#pub-qos', '1');
    await publisher.check('#pub-retain');
    await publisher.click('#publish');

    await eventually(() => got.length === 1, "the retained message at the device");
    expect(got[0]).toMatchObject({ topic: `${root}/lamp/state`, payload: 'on', qos: 1, retain: true });
    const state = await page.waitForSelector(`#tree li[data-topic="${root}/lamp/state"] .value`);
    expect(await state.textContent()).toBe('on');
    // a device's retained message lands in the same tree, under the same parent
    expect(await mosquittoPub(['-t', `${root}/lamp/level`, '-m', '80', '-r'])).toBe(0);
    const level = await page.waitForSelector(`#tree li[data-topic="${root}/lamp"] li[data-topic="${root}/lamp/level"] .value`);
    expect(await level.textContent()).toBe('80');
    await publisher.close();
    await device.endAsync();
  });

  it("shows the broker's $SYS figures, this console's connection counted among the clients connected", async () => {
    // Published every 5 s by the harness; the console polls every 2 s.
    const connected = '#broker-stats tr[data-topic="$SYS/broker/clients/connected"] td:last-child';
    await page.waitForSelector(connected, { timeout: 20_000 });
    // The table is drawn again at each poll: read it afresh.
    await inPage(page, 'a count of at least this console', `Number(document.querySelector('${connected}')?.textContent) >= 1`);
    expect(Number(await page.textContent(connected))).toBeGreaterThanOrEqual(1);
    expect(await page.textContent('#broker-stats tr[data-topic="$SYS/broker/uptime"] td:last-child')).toMatch(/^\d+ seconds$/);
  });
});


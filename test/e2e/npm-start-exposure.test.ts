/**
 * What `npm start` exposes, run as a user runs it (local/main.ts in its own process, with its
 * own DynamoDB Local): every endpoint it prints answers on loopback and on no other address of
 * this machine, DynamoDB Local included (its jar alone would listen on every interface); and the
 * listener's delivery endpoint survives whatever reaches it, acting only on signed requests.
 */
import net from 'node:net';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { collect, connectClient, eventually } from '../support/clients';
import { freePort } from '../../local/free-port';
import { runTs } from '../support/run-ts';

/** An IPv4 address of this machine that is not loopback: where someone on the LAN would knock. */
const lanAddress = Object.values(os.networkInterfaces())
  .flat()
  .find((address) => address && address.family === 'IPv4' && !address.internal)?.address;

function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 3_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('npm start: exposure', () => {
  it.skipIf(lanAddress === undefined)(
    `every endpoint, DynamoDB Local included, answers on loopback only (not on ${lanAddress ?? 'a LAN address'}); the delivery endpoint survives GET /@connections/% and refuses unsigned requests`,
    async () => {
      const [mqtt, ws, apigw, dynamo, web, http] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
      const started = runTs('local/main.ts', [], {
        MQTT_PORT: String(mqtt),
        MQTT_WS_PORT: String(ws),
        APIGW_WS_PORT: String(apigw),
        DYNAMODB_PORT: String(dynamo),
        CONSOLE_PORT: String(web),
        HTTP_PORT: String(http),
        DYNAMODB_ENDPOINT: '',
      });
      try {
        await eventually(() => started.output().includes('Ctrl-C stops everything'), 'the endpoints to be printed', 90_000);
        const delivery = /listener delivery endpoint +(http:\/\/127\.0\.0\.1:(\d+))\/@connections/.exec(started.output());
        expect(delivery).not.toBeNull();
        const deliveryPort = Number(delivery![2]);

        const ports = { mqtt, ws, apigw, dynamo, web, http, delivery: deliveryPort };
        for (const [name, port] of Object.entries(ports)) {
          expect(await connects('127.0.0.1', port), `${name} on loopback`).toBe(true);
          expect(await connects(lanAddress!, port), `${name} on ${lanAddress}`).toBe(false);
        }

        // The request that used to throw in decodeURIComponent and end the process.
        const malformed = await fetch(`${delivery![1]}/@connections/%`);
        expect(malformed.status).toBe(400);
        const unsigned = await fetch(`${delivery![1]}/@connections`, { method: 'POST', body: Buffer.alloc(10) });
        expect(unsigned.status).toBe(403);
        expect(started.child.exitCode).toBeNull();

        // ...and the broker still delivers to devices through that endpoint.
        const client = await connectClient(`mqtt://127.0.0.1:${mqtt}`, { protocolVersion: 5 });
        const got = collect(client);
        await client.subscribeAsync('exposure/#');
        await client.publishAsync('exposure/check', 'still here', { qos: 1 });
        await eventually(() => got.length === 1, 'the message back through the delivery endpoint');
        await client.endAsync();

        started.child.kill('SIGINT');
        expect(await started.exited).toBe(0);
      } finally {
        started.child.kill('SIGKILL');
      }
    },
    150_000,
  );
});

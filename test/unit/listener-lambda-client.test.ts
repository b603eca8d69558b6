/**
 * The listener's Lambda client keeps many invocations in flight: 120 at once reach the endpoint
 * together (the SDK's default pool of 50 sockets would hold 70 back).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, describe, expect, it } from 'vitest';
import { listenerLambdaClientConfig } from '../../shared/listener/lambda-sink';

describe('the listener Lambda client', () => {
  let server: Server | undefined;
  afterAll(() => server?.close());

  it('has 120 invocations in flight at once', async () => {
    let inFlight = 0;
    let most = 0;
    server = createServer((request, response) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      request.resume();
      request.on('end', () =>
        setTimeout(() => {
          inFlight -= 1;
          response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        }, 300),
      );
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const lambda = new LambdaClient(
      listenerLambdaClientConfig({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 1 }),
    );
    await Promise.all(Array.from({ length: 120 }, () => lambda.send(new InvokeCommand({ FunctionName: 'packets', Payload: Buffer.from('{}') }))));
    lambda.destroy();
    expect(most).toBe(120);
  });
});

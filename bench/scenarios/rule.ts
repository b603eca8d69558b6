/**
 * `qos1-rule`: qos1-1to1 with a rule on its topics sending every message to a webhook (in the
 * harness's process, answering at once), so that beside qos1-1to1 it shows what the rule path
 * adds per message: DynamoDB calls and units (none expected) and handler time. The webhook's
 * count is printed when the harness stops. Run only when named: the harness loads the rule only
 * then (bench/main.ts).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseRules, type RuleConfig } from '../../shared/rules/rule-config';
import { publishToSubscribers } from './publish';
import type { Scenario, Size } from './scenario';
import { n } from './scenario';

const counts = { quick: 10_000, full: 100_000 } satisfies Record<Size, number>;
const WINDOW = 1_000;

export const qos1Rule: Scenario = {
  name: 'qos1-rule',
  describe: (size) => `QoS 1, 1 publisher -> 1 subscriber and a rule sending each message to a local webhook, up to ${n(counts[size])} messages, ${n(WINDOW)} in flight`,
  run: (ctx) =>
    publishToSubscribers(ctx, {
      subscribers: 1,
      filter: () => ctx.topic('t'),
      subscriberQos: 1,
      topic: () => ctx.topic('t'),
      qos: 1,
      fanOut: 1,
      count: counts[ctx.size],
      window: WINDOW,
    }),
};

/** The scenario's rule: its topics (bench/<run>/qos1-rule/...) to the webhook. */
export function benchRules(url: string): RuleConfig[] {
  return parseRules([{ name: 'bench', filter: `bench/+/${qos1Rule.name}/#`, target: { type: 'http', url } }], 'bench');
}

/** A webhook that accepts every request and counts the messages. */
export async function startRuleWebhook(): Promise<{ url: string; received(): number; requests(): number; stop(): Promise<void> }> {
  let received = 0;
  let requests = 0;
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      requests += 1;
      received += (JSON.parse(Buffer.concat(chunks).toString()) as { messages: unknown[] }).messages.length;
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received: () => received,
    requests: () => requests,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

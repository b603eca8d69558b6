/**
 * The harness in its own process, so the load generator's CPU and memory are not the broker's:
 * started by harness-process.ts with an IPC channel, it answers snapshot, quiesce and stop.
 * Run with --expose-gc so memory can be read after a collection. The listener's environment
 * variables (functions/listener/listener-settings.ts) apply to it, as to `npm start`.
 */
import { listenerSettingsFromEnv } from '../../functions/listener/listener-settings';
import { startHarness, type Harness } from '../../local/harness';
import type { LogLevel } from '../../shared/util/logger';
import { readCounters, waitIdle } from './harness-counters';
import { benchRules, startRuleWebhook } from '../scenarios/rule';
import type { BrokerSnapshot } from './target';

export interface ChildOptions {
  readonly dynamoDbEndpoint?: string;
  readonly dynamoDbPort?: number;
  readonly logLevel: LogLevel;
  /** Load the `qos1-rule` scenario's rule: its topics to a webhook in this process (bench/scenarios/rule.ts). */
  readonly rules?: boolean;
}

export type ChildCommand = { readonly op: 'snapshot'; readonly gc: boolean } | { readonly op: 'quiesce' | 'stop' };
export type ChildRequest = ChildCommand & { readonly id: number };

export type ChildMessage =
  | { readonly type: 'ready'; readonly mqttPort: number; readonly apigwPort: number; readonly dynamoDbEndpoint: string }
  | { readonly type: 'failed'; readonly error: string }
  | { readonly type: 'answer'; readonly id: number; readonly snapshot?: BrokerSnapshot };

const send = (message: ChildMessage): void => void process.send?.(message);
const options = JSON.parse(process.env.BENCH_HARNESS_OPTIONS ?? '{}') as ChildOptions;

let harness: Harness;
const webhook = options.rules ? await startRuleWebhook() : undefined;
try {
  harness = await startHarness({
    ...(webhook ? { rules: { rules: benchRules(webhook.url) } } : {}),
    mqttPort: 0,
    wsPort: 0,
    apigwPort: 0,
    logLevel: options.logLevel,
    // The listener's settings as `npm start` reads them (MQTT_BATCH_WINDOW_MS and the rest).
    listener: listenerSettingsFromEnv(process.env).limits,
    // $SYS published and the timers (due wills, expired sessions) run as often as the cloud's
    // sweeper does them, so their cost per operation is the cloud's: run every second, the
    // timers' 34 queries would be 0.07 DynamoDB calls per message of a 500 msg/s fleet.
    sysIntervalMs: 60_000,
    timerIntervalMs: 60_000,
    ...(options.dynamoDbEndpoint ? { dynamoDbEndpoint: options.dynamoDbEndpoint } : { dynamoDbPort: options.dynamoDbPort ?? 8000 }),
  });
} catch (error) {
  send({ type: 'failed', error: error instanceof Error ? error.message : String(error) });
  process.exit(1);
}

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await harness.stop();
  if (webhook) {
    process.stderr.write(`  the rule's webhook received ${webhook.received()} messages in ${webhook.requests()} requests\n`);
    await webhook.stop();
  }
  process.exit(0);
};

process.on('message', (request: ChildRequest) => {
  void (async () => {
    switch (request.op) {
      case 'snapshot': {
        if (request.gc) global.gc?.();
        const { rss, heapUsed } = process.memoryUsage();
        const snapshot: BrokerSnapshot = { counters: readCounters(harness), memory: { rssBytes: rss, heapUsedBytes: heapUsed } };
        return send({ type: 'answer', id: request.id, snapshot });
      }
      case 'quiesce':
        await waitIdle(harness);
        return send({ type: 'answer', id: request.id });
      case 'stop':
        send({ type: 'answer', id: request.id });
        return stop();
    }
  })();
});
// The bench went away or was interrupted without stopping us: stop anyway, so no DynamoDB Local is left behind.
process.on('disconnect', () => void stop());
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
send({ type: 'ready', mqttPort: harness.mqttPort, apigwPort: harness.apigwPort, dynamoDbEndpoint: harness.dynamoDbEndpoint });

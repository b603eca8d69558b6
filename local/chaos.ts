/**
 * The chaos mix, shared by the chaos suite (test/e2e/chaos.test.ts, one short round) and
 * `npm run soak` (rounds for N minutes): QoS 1 and QoS 2 publishers and subscribers with
 * persistent MQTT 5.0 sessions keep working while faults are injected: the packet handler failing
 * before or after it runs and store calls failing before or after they run (the harness's
 * `faults` option), publishers' and subscribers' sockets dropped, the listener killed and
 * restarted, DynamoDB Local restarted, and DynamoDB cut for a moment (through a TcpProxy in front
 * of it). Each kind is off unless asked for. What the clients observed is returned for the caller
 * to check.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Harness } from './harness';
import type { TcpProxy } from './tcp-proxy';

/**
 * Broker settings for a chaos harness. The faults make each client reconnect hundreds of times a
 * minute, far beyond the connection rate a device is allowed (20 per client id per 60 s by
 * default, tested in limits.test.ts), which would then lock it out for the rest of the window.
 */
export const chaosBrokerConfig = { connectRate: undefined } as const;

export interface ChaosFaults {
  handlerFailure: number;
  handlerFailuresDue?: number;
  storeFailure?: number;
  readonly random: () => number;
}

export interface ChaosOptions {
  readonly harness: Harness;
  /** The switches the harness reads (HarnessOptions.faults); set to the probabilities below during the round. */
  readonly faults: ChaosFaults;
  readonly handlerFailure: number;
  readonly storeFailure?: number;
  readonly durationMs: number;
  /** Distinguishes the round's client ids and topics. */
  readonly run: string;
  /** Drop subscribers' sockets too, not only publishers'. */
  readonly dropSubscribers?: boolean;
  /** Kill the listener a third of the way in (harness.killListener()) and start a new one 1 s later. */
  readonly killListener?: boolean;
  /** Restarts DynamoDB (with its data); called two thirds of the way in. */
  readonly restartDynamoDb?: () => Promise<void>;
  /** The proxy in front of DynamoDB, to cut for 0.8 s half way. */
  readonly cutDynamoDb?: TcpProxy;
}

export interface ChaosPublisher {
  readonly name: string;
  readonly topic: string;
  readonly qos: 1 | 2;
  sent: number;
  readonly acknowledged: Set<number>;
  /** Publishes whose outcome the publisher never learned (PUBCOMP 0x92 on recovery, see below). */
  readonly unconfirmed: Set<number>;
}

export interface ChaosSubscriber {
  readonly name: string;
  readonly clientId: string;
  /** Sequence numbers received, per topic, in arrival order. */
  readonly received: Map<string, number[]>;
  /** At the end of the round: whether its client was connected, and how often it had reconnected (for a report on what went wrong). */
  connectedAtEnd?: boolean;
  reconnects?: number;
}

export interface ChaosResult {
  readonly publishers: readonly ChaosPublisher[];
  readonly subscribers: readonly ChaosSubscriber[];
  readonly handlerFailures: number;
  readonly storeFailures: number;
  readonly publisherSocketsDropped: number;
  readonly subscriberSocketsDropped: number;
  readonly listenerKills: number;
  readonly dynamoDbRestarts: number;
  readonly dynamoDbCuts: number;
  readonly reconnects: number;
  /** Publishes neither acknowledged nor refused within the wait after the faults stopped. */
  readonly unsettled: number;
  /** Every acknowledged message at every subscriber within the wait (the caller says which are missing). */
  readonly complete: boolean;
  readonly seconds: number;
}

/** How long the round waits, after the faults stop, for publishes to settle and then for deliveries. */
const SETTLE_MS = 20_000;

/** What a publisher's acknowledged messages are, in order. */
export function acknowledgedInOrder(p: ChaosPublisher): number[] {
  return [...p.acknowledged].sort((a, b) => a - b);
}

export async function runChaosRound(options: ChaosOptions): Promise<ChaosResult> {
  const { harness, faults, run } = options;
  const started = Date.now();
  const injectedBefore = { ...harness.faults };
  const clients: Array<{ client: MqttClient; reconnects: number }> = [];
  const connect = (name: string) => {
    const client = mqtt.connect(harness.mqttUrl, {
      protocolVersion: 5,
      clientId: `chaos-${name}-${run}`,
      clean: false,
      properties: { sessionExpiryInterval: 600 },
      reconnectPeriod: 100,
      reconnectOnConnackError: true,
      connectTimeout: 5000,
      resubscribe: false,
    });
    const entry = { client, reconnects: 0 };
    client.on('reconnect', () => entry.reconnects++);
    client.on('error', () => undefined);
    clients.push(entry);
    return client;
  };
  try {
    const subscribers: ChaosSubscriber[] = [];
    const subscriberClients: MqttClient[] = [];
    for (const name of ['sub-a', 'sub-b']) {
      const client = connect(name);
      const s: ChaosSubscriber = { name, clientId: `chaos-${name}-${run}`, received: new Map() };
      client.on('message', (topic, payload) => {
        const list = s.received.get(topic) ?? [];
        list.push(Number(payload.toString().split(':')[1]));
        s.received.set(topic, list);
      });
      // Subscribe once, before the faults: the persistent sessions keep the subscriptions.
      if (!client.connected) await new Promise<void>((resolve) => client.once('connect', () => resolve()));
      await client.subscribeAsync(`chaos/${run}/#`, { qos: 2 });
      subscribers.push(s);
      subscriberClients.push(client);
    }
    const publishers = (
      [
        ['pub-q1-a', 1],
        ['pub-q1-b', 1],
        ['pub-q2-a', 2],
        ['pub-q2-b', 2],
      ] as const
    ).map(([name, qos]) => ({
      name,
      qos,
      topic: `chaos/${run}/${name}`,
      sent: 0,
      acknowledged: new Set<number>(),
      unconfirmed: new Set<number>(),
      client: connect(name),
    }));

    faults.handlerFailure = options.handlerFailure;
    // At least one, whatever the dice say: a round carries few invocations (a listener batches
    // many connections' packets and closes into one), and at 4 % one in twenty rounds had none.
    if (options.handlerFailure > 0) faults.handlerFailuresDue = 1;
    faults.storeFailure = options.storeFailure ?? 0;
    let publisherSocketsDropped = 0;
    let subscriberSocketsDropped = 0;
    let listenerKills = 0;
    let dynamoDbRestarts = 0;
    let dynamoDbCuts = 0;
    const deadline = Date.now() + options.durationMs;
    // Each publisher sends in sequence: the next message once the last one is acknowledged.
    const publishing = publishers.map(async (p) => {
      while (Date.now() < deadline) {
        const n = ++p.sent;
        try {
          await p.client.publishAsync(p.topic, `${p.name}:${n}`, { qos: p.qos });
          p.acknowledged.add(n);
        } catch (error) {
          // PUBCOMP 0x92 (Packet Identifier not found): the PUBREL was resent after the broker had
          // completed it (its PUBCOMP lost with a dropped socket). MQTT 5.0 says this "is not an error
          // during recovery", but MQTT.js fails the publish: the publisher does not know, so the
          // message does not count as acknowledged (it is still checked for exactly once).
          if ((error as { code?: number }).code !== 0x92) throw error;
          p.unconfirmed.add(n);
        }
      }
    });
    const publisherVictims = publishers.map((p) => ({ client: p.client, publisher: true }));
    const subscriberVictims = subscriberClients.map((client) => ({ client, publisher: false }));
    const dropping = (async () => {
      // Publishers and (when asked) subscribers by turns, so a round drops some of each.
      for (let turn = 0; Date.now() < deadline; turn++) {
        await sleep(400 + faults.random() * 600);
        const victims = options.dropSubscribers && turn % 2 === 1 ? subscriberVictims : publisherVictims;
        const victim = victims[Math.floor(faults.random() * victims.length)]!;
        if (!victim.client.connected) continue;
        victim.client.stream.destroy();
        if (victim.publisher) publisherSocketsDropped++;
        else subscriberSocketsDropped++;
      }
    })();
    const killing = (async () => {
      if (!options.killListener) return;
      await sleep(options.durationMs / 3);
      await harness.killListener();
      listenerKills++;
      await sleep(1000);
      await harness.restartListener();
    })();
    const restarting = (async () => {
      if (!options.restartDynamoDb) return;
      await sleep((options.durationMs * 2) / 3);
      await options.restartDynamoDb();
      dynamoDbRestarts++;
    })();
    const cutting = (async () => {
      if (!options.cutDynamoDb) return;
      await sleep(options.durationMs / 2);
      await options.cutDynamoDb.cut('refuse');
      dynamoDbCuts++;
      await sleep(800);
      await options.cutDynamoDb.restore();
    })();

    await Promise.all([dropping, killing, restarting, cutting]);
    faults.handlerFailure = 0;
    faults.handlerFailuresDue = 0;
    faults.storeFailure = 0;
    const unsettled = () => publishers.reduce((sum, p) => sum + p.sent - p.acknowledged.size - p.unconfirmed.size, 0);
    // A publish still waiting is left behind (the clients end below), but a publisher that failed throws here.
    const published = Promise.all(publishing);
    await Promise.race([published, until(() => unsettled() === 0, SETTLE_MS)]);
    const complete = await until(
      () => subscribers.every((s) => publishers.every((p) => acknowledgedInOrder(p).every((n) => (s.received.get(p.topic) ?? []).includes(n)))),
      SETTLE_MS,
    );
    subscribers.forEach((s, i) => {
      s.connectedAtEnd = subscriberClients[i]!.connected;
      s.reconnects = clients.find((c) => c.client === subscriberClients[i])!.reconnects;
    });
    return {
      publishers,
      subscribers,
      handlerFailures: harness.faults.injected - injectedBefore.injected,
      storeFailures: harness.faults.storeFailures - injectedBefore.storeFailures,
      publisherSocketsDropped,
      subscriberSocketsDropped,
      listenerKills,
      dynamoDbRestarts,
      dynamoDbCuts,
      reconnects: clients.reduce((sum, c) => sum + c.reconnects, 0),
      unsettled: unsettled(),
      complete,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    faults.handlerFailure = 0;
    faults.handlerFailuresDue = 0;
    faults.storeFailure = 0;
    for (const { client } of clients) client.end(true);
  }
}

/** One line of what a round went through: messages, faults of each kind, reconnects. */
export function chaosSummary(result: ChaosResult): string {
  const { publishers, subscribers } = result;
  const acknowledged = publishers.reduce((sum, p) => sum + p.acknowledged.size, 0);
  const unconfirmed = publishers.reduce((sum, p) => sum + p.unconfirmed.size, 0);
  const duplicates = subscribers.reduce((sum, s) => sum + [...s.received.values()].reduce((d, list) => d + list.length - new Set(list).size, 0), 0);
  return (
    `${acknowledged} messages acknowledged (${publishers.map((p) => `${p.name} ${p.acknowledged.size}`).join(', ')}), ` +
    `${result.handlerFailures} handler failures, ${result.storeFailures} store failures, ` +
    `${result.publisherSocketsDropped} publisher and ${result.subscriberSocketsDropped} subscriber sockets dropped, ` +
    `${result.listenerKills} listener kills, ${result.dynamoDbRestarts} DynamoDB restarts, ${result.dynamoDbCuts} DynamoDB cuts, ` +
    `${result.reconnects} reconnects, ${duplicates} QoS 1 duplicates delivered, ${unconfirmed} QoS 2 PUBCOMP 0x92 on recovery, ` +
    `${result.unsettled} publishes unsettled, ${result.seconds.toFixed(1)} s`
  );
}

/** The faults of a round that the caller must see: missing, out of order, QoS 2 twice. */
export function chaosViolations(result: ChaosResult): string[] {
  const violations: string[] = [];
  for (const s of result.subscribers) {
    for (const p of result.publishers) {
      const got = s.received.get(p.topic) ?? [];
      const missing = acknowledgedInOrder(p).filter((n) => !got.includes(n));
      if (missing.length > 0) {
        const client = s.connectedAtEnd === undefined ? '' : ` (its client ${s.connectedAtEnd ? 'connected' : 'not connected'} at the end, ${s.reconnects} reconnects)`;
        violations.push(`${p.name} -> ${s.name}: acknowledged but never delivered: ${missing.join(', ')}${client}`);
      }
      const firsts = got.filter((n, i) => got.indexOf(n) === i);
      const inversion = firsts.findIndex((n, i) => i > 0 && n < firsts[i - 1]!);
      if (inversion > 0) violations.push(`${p.name} -> ${s.name}: out of order (received ${got.slice(Math.max(0, got.indexOf(firsts[inversion]!) - 6), got.indexOf(firsts[inversion]!) + 3).join(', ')})`);
      if (p.qos === 2 && got.length !== firsts.length) violations.push(`${p.name} -> ${s.name}: QoS 2 delivered more than once`);
    }
  }
  return violations;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** A small seeded PRNG (mulberry32), so a run can be repeated with its seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Large fan-outs are split across parallel worker invocations, so one PUBLISH to thousands of
 * subscribers is not bounded by one handler's time and connections. The handler keeps the first
 * part and hands each further part (its recipients, with what each receives) to a worker, and
 * waits for them all: the publisher's acknowledgement still goes out only after every delivery
 * is in flight or queued. In the cloud a worker is a synchronous Lambda invoke of the fan-out
 * function; the local harness invokes the same handler in-process through the same JSON.
 */
import type { Delivery } from './actions';
import type { BrokerDeps } from './context';
import type { FanoutJob, QueuedMessage, SerializedMessage } from './ports';

/**
 * The most bytes of JSON one job may make: a synchronous Invoke takes 6,291,456 (local/aws-limits.ts
 * enforces it); the rest is room for the estimate's error and the invoke's own envelope.
 */
export const MAX_JOB_BYTES = 4 * 1024 * 1024;
/** A delivery's JSON without its payload, at most: recipient, topic, properties (a generous bound; topics are checked against MQTT_MAX_TOPIC_LENGTH). */
const DELIVERY_OVERHEAD_BYTES = 1024;

/**
 * The deliveries split beyond `config.fanoutPartSize` when workers are configured: the part this
 * handler delivers itself, and a job for each further part. A part ends at `fanoutPartSize`
 * deliveries, a job's also when it would pass MAX_JOB_BYTES (each distinct payload counted once). A
 * client's deliveries all stay in one part, in order, so parts running side by side never reorder
 * the messages of one subscriber.
 */
export function splitFanout(deps: Pick<BrokerDeps, 'config' | 'fanout'>, deliveries: readonly Delivery[]): { own: readonly Delivery[]; jobs: FanoutJob[] } {
  const size = deps.config.fanoutPartSize;
  if (!deps.fanout || deliveries.length <= size) return { own: deliveries, jobs: [] };
  const byClient = new Map<string, Delivery[]>();
  for (const delivery of deliveries) {
    const list = byClient.get(delivery.recipient.clientId);
    if (list) list.push(delivery);
    else byClient.set(delivery.recipient.clientId, [delivery]);
  }
  const parts: Part[] = [newPart()];
  for (const list of byClient.values()) {
    let part = parts[parts.length - 1]!;
    // The first part stays here: only the jobs' bytes are bounded.
    const tooBig = parts.length > 1 && part.bytes + bytesAdded(part, list) > MAX_JOB_BYTES;
    if (part.deliveries.length > 0 && (part.deliveries.length + list.length > size || tooBig)) {
      part = newPart();
      parts.push(part);
    }
    part.bytes += bytesAdded(part, list);
    for (const { message } of list) part.payloads.add(message.payload);
    part.deliveries.push(...list);
  }
  const [own, ...others] = parts;
  return { own: own!.deliveries, jobs: others.map((part) => toJob(part.deliveries)) };
}

interface Part {
  readonly deliveries: Delivery[];
  /** The payloads already counted (one Buffer per message, shared by its deliveries). */
  readonly payloads: Set<Buffer>;
  bytes: number;
}

function newPart(): Part {
  return { deliveries: [], payloads: new Set(), bytes: 0 };
}

/** What `list` adds to a part's job: its deliveries, and those of its payloads the part does not carry yet, in base64. */
function bytesAdded(part: Part, list: readonly Delivery[]): number {
  const fresh = new Set<Buffer>();
  for (const { message } of list) if (!part.payloads.has(message.payload)) fresh.add(message.payload);
  let bytes = list.length * DELIVERY_OVERHEAD_BYTES;
  for (const payload of fresh) bytes += 4 * Math.ceil(payload.length / 3) + 3;
  return bytes;
}

function toJob(deliveries: readonly Delivery[]): FanoutJob {
  const payloads: string[] = [];
  const indexes = new Map<Buffer, number>();
  return {
    deliveries: deliveries.map(({ recipient, message }) => {
      const { payload, properties, ...rest } = message;
      const { correlationData, ...others } = properties ?? {};
      let index = indexes.get(payload);
      if (index === undefined) {
        index = payloads.push(payload.toString('base64')) - 1;
        indexes.set(payload, index);
      }
      const serialized: SerializedMessage = {
        ...rest,
        payload: index,
        ...(properties ? { properties: { ...others, ...(correlationData ? { correlationData: correlationData.toString('base64') } : {}) } } : {}),
      };
      return { recipient, message: serialized };
    }),
    payloads,
  };
}

/** A job's deliveries as the handler made them; the deliveries of one payload share one Buffer again. */
export function deliveriesOf(job: FanoutJob): Delivery[] {
  const payloads = job.payloads.map((payload) => Buffer.from(payload, 'base64'));
  return job.deliveries.map((delivery) => fromJob(delivery, payloads));
}

function fromJob({ recipient, message }: FanoutJob['deliveries'][number], payloads: readonly Buffer[]): Delivery {
  const { payload, properties, ...rest } = message;
  const { correlationData, ...others } = properties ?? {};
  const body = payloads[payload];
  if (body === undefined) throw new Error(`fan-out job names payload ${payload}, which it does not carry`);
  const queued: QueuedMessage = {
    ...rest,
    payload: body,
    ...(properties ? { properties: { ...others, ...(correlationData ? { correlationData: Buffer.from(correlationData, 'base64') } : {}) } } : {}),
  };
  return { recipient, message: queued };
}

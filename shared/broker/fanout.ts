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
 * The deliveries split beyond `config.fanoutPartSize` when workers are configured: the part this
 * handler delivers itself, and a job for each further part. A client's deliveries all stay in one
 * part, in order, so parts running side by side never reorder the messages of one subscriber.
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
  const parts: Delivery[][] = [[]];
  for (const list of byClient.values()) {
    if (parts[parts.length - 1]!.length > 0 && parts[parts.length - 1]!.length + list.length > size) parts.push([]);
    parts[parts.length - 1]!.push(...list);
  }
  const [own, ...others] = parts;
  return { own: own!, jobs: others.map(toJob) };
}

function toJob(deliveries: readonly Delivery[]): FanoutJob {
  return {
    deliveries: deliveries.map(({ recipient, message }) => {
      const { payload, properties, ...rest } = message;
      const { correlationData, ...others } = properties ?? {};
      const serialized: SerializedMessage = {
        ...rest,
        payload: payload.toString('base64'),
        ...(properties ? { properties: { ...others, ...(correlationData ? { correlationData: correlationData.toString('base64') } : {}) } } : {}),
      };
      return { recipient, message: serialized };
    }),
  };
}

export function fromJob({ recipient, message }: FanoutJob['deliveries'][number]): Delivery {
  const { payload, properties, ...rest } = message;
  const { correlationData, ...others } = properties ?? {};
  const queued: QueuedMessage = {
    ...rest,
    payload: Buffer.from(payload, 'base64'),
    ...(properties ? { properties: { ...others, ...(correlationData ? { correlationData: Buffer.from(correlationData, 'base64') } : {}) } } : {}),
  };
  return { recipient, message: queued };
}

/**
 * Faults the harness injects for the chaos and crash-point suites: packet handler invocations and
 * store calls that fail before or after they ran.
 */
import type { BrokerStore } from '../shared/broker/ports';
import type { BatchResult, ListenerEvent } from '../shared/listener/events';

export interface FaultOptions {
  readonly handlerFailure: number;
  /** This many of the next packet handler invocations fail whatever `handlerFailure` says (counted down as they do). */
  handlerFailuresDue?: number;
  /**
   * With this probability, a store call made by the broker (handlers, fan-out, sweeper, timers)
   * fails with an error: half of them before the call (nothing written), half after it
   * completed (written, and the caller cannot tell: a timeout after the write took effect). The
   * caller goes on from the error as it would from DynamoDB's. Read at every call, as
   * `handlerFailure` is.
   */
  readonly storeFailure?: number;
  readonly random?: () => number;
  /**
   * Fail only invocations in which a connection's first packet is of these types (e.g. 'publish',
   * 'pubrel'); any invocation without it. A failed invocation fails all its connections' packets, as a Lambda's would.
   */
  readonly packetTypes?: readonly string[];
}

/** The packet handler with the injected faults of `options` (none without them), counted in `count`. */
export function faulty(
  handler: (event: ListenerEvent) => Promise<BatchResult | void>,
  options: FaultOptions | undefined,
  count: { injected: number },
): (event: ListenerEvent) => Promise<BatchResult | void> {
  if (!options) return handler;
  const random = options.random ?? Math.random;
  return async (event) => {
    if (event.type !== 'packets' && event.type !== 'batch') return handler(event);
    const due = (options.handlerFailuresDue ?? 0) > 0;
    if (!due && random() >= options.handlerFailure) return handler(event);
    const firsts = event.type === 'batch' ? event.connections.map((c) => c.packets[0]) : [event.packets[0]];
    if (options.packetTypes && !firsts.some((first) => options.packetTypes!.includes(firstPacketType(first)))) return handler(event);
    if (due) options.handlerFailuresDue! -= 1;
    count.injected++;
    if (random() < 0.5) throw new Error('injected fault: the handler failed before it ran');
    await handler(event);
    throw new Error('injected fault: the handler failed after it ran');
  };
}

/**
 * The store with the injected store failures of `options` (none without them), counted in `count`.
 * Every method of every port returns a promise (shared/broker/ports/).
 */
export function faultyStore(store: BrokerStore, options: FaultOptions | undefined, count: { storeFailures: number }): BrokerStore {
  if (!options) return store;
  const random = options.random ?? Math.random;
  return wrapEachPort(store, (_port, method, call) => {
    const probability = options.storeFailure ?? 0;
    if (probability === 0 || random() >= probability) return call();
    count.storeFailures++;
    if (random() < 0.5) return Promise.reject(new Error(`injected fault: store ${method} failed before it ran`));
    return call().then(() => {
      throw new Error(`injected fault: store ${method} failed after it ran`);
    });
  });
}

/** The store with every call to every port's methods passed through `around` (fault injection). */
export function wrapEachPort(
  store: BrokerStore,
  around: (port: string, method: string, call: () => Promise<unknown>) => Promise<unknown>,
): BrokerStore {
  const wrap = <P extends object>(name: string, port: P): P =>
    new Proxy(port, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => around(name, String(property), () => value.apply(target, args) as Promise<unknown>);
      },
    });
  return {
    connections: wrap('connections', store.connections),
    sessions: wrap('sessions', store.sessions),
    subscriptions: wrap('subscriptions', store.subscriptions),
    deliveries: wrap('deliveries', store.deliveries),
    receipts: wrap('receipts', store.receipts),
    retained: wrap('retained', store.retained),
    wills: wrap('wills', store.wills),
  };
}

const PACKET_TYPES = ['reserved', 'connect', 'connack', 'publish', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'subscribe', 'suback', 'unsubscribe', 'unsuback', 'pingreq', 'pingresp', 'disconnect', 'auth'];

function firstPacketType(base64: string | undefined): string {
  const first = base64 ? Buffer.from(base64.slice(0, 4), 'base64')[0] : undefined;
  return first === undefined ? 'none' : PACKET_TYPES[first >> 4]!;
}

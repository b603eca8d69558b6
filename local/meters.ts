/**
 * What the cloud bills per request, counted in the local harness for the benchmark: handler
 * invocations (each would be one Lambda request) with their duration, and calls to the
 * `@connections` gateway (PostToConnection, or requests to a listener's delivery endpoint).
 * DynamoDB calls and capacity units are counted by the store's own CapacityMeter.
 */
import { performance } from 'node:perf_hooks';
import type { CapacityMeter } from '../shared/store/capacity-meter';

export interface InvocationSnapshot {
  readonly invocations: number;
  /** Invocations started and not finished yet. */
  readonly inFlight: number;
  /** Wall time summed over invocations, as Lambda measures duration. */
  readonly durationMs: number;
  /** Wall time rounded up to Lambda's 1 ms billing granularity per invocation, summed. */
  readonly billedMs: number;
  readonly byRoute: Readonly<Record<string, number>>;
}

export class InvocationMeter {
  private invocations = 0;
  private inFlight = 0;
  private durationMs = 0;
  private billedMs = 0;
  private readonly byRoute: Record<string, number> = {};

  /** The same handler, counted and timed as one invocation per call. */
  wrap<E, R>(route: string, handler: (event: E) => Promise<R>): (event: E) => Promise<R> {
    return async (event) => {
      this.invocations += 1;
      this.inFlight += 1;
      this.byRoute[route] = (this.byRoute[route] ?? 0) + 1;
      const started = performance.now();
      try {
        return await handler(event);
      } finally {
        const elapsed = performance.now() - started;
        this.durationMs += elapsed;
        this.billedMs += Math.max(1, Math.ceil(elapsed));
        this.inFlight -= 1;
      }
    };
  }

  snapshot(): InvocationSnapshot {
    const { invocations, inFlight, durationMs, billedMs } = this;
    return { invocations, inFlight, durationMs, billedMs, byRoute: { ...this.byRoute } };
  }
}

export interface GatewaySnapshot {
  /** Calls by method: `send`, `close`, and whatever else the gateway offers (a batched send). */
  readonly calls: Readonly<Record<string, number>>;
}

/**
 * Counts calls to a `@connections` gateway by method name and passes them through. By name, not
 * by interface, so a gateway that gains a method (a batched send) is counted without a change here.
 */
export class GatewayMeter {
  private readonly calls: Record<string, number> = {};

  wrap<G extends object>(gateway: G): G {
    const calls = this.calls;
    return new Proxy(gateway, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function' || typeof property !== 'string') return value;
        return (...args: unknown[]) => {
          calls[property] = (calls[property] ?? 0) + 1;
          return Reflect.apply(value, target, args);
        };
      },
    });
  }

  snapshot(): GatewaySnapshot {
    return { calls: { ...this.calls } };
  }
}

/** What AWS would have refused or throttled (local/aws-limits.ts), by kind. */
export type LimitKind =
  | 'dynamodb.throttled'
  | 'dynamodb.unprocessed'
  | 'dynamodb.refused'
  | 'lambda.throttled'
  | 'lambda.payloadTooLarge'
  | 'apigw.throttled';

export interface LimitSnapshot {
  /** Calls refused or throttled, by kind (a batch's unprocessed keys count once per key). */
  readonly refused: Readonly<Partial<Record<LimitKind, number>>>;
}

export class LimitMeter {
  private readonly refused: Partial<Record<LimitKind, number>> = {};

  count(kind: LimitKind, n = 1): void {
    this.refused[kind] = (this.refused[kind] ?? 0) + n;
  }

  snapshot(): LimitSnapshot {
    return { refused: { ...this.refused } };
  }
}

/** Everything the harness counts, read by `npm run bench`. */
export interface HarnessMeters {
  readonly dynamoDb: CapacityMeter;
  readonly invocations: InvocationMeter;
  readonly gateway: GatewayMeter;
  readonly limits: LimitMeter;
}

/**
 * What the cloud bills per request, counted in the local harness for the benchmark: handler
 * invocations (each would be one Lambda request) with their duration, and `@connections` calls
 * (each would be one PostToConnection, or one request to a listener's delivery endpoint).
 * DynamoDB calls and capacity units are counted by the store's own CapacityMeter.
 */
import { performance } from 'node:perf_hooks';
import type { ConnectionGateway, DeliveryResult } from '../shared/broker/ports';
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

export interface DeliverySnapshot {
  /** `@connections` POSTs: one per connection per packet batch. */
  readonly posts: number;
  readonly bytes: number;
  readonly closes: number;
}

/** A gateway that counts what passes through it to the real one. */
export class MeteredGateway implements ConnectionGateway {
  private posts = 0;
  private bytes = 0;
  private closes = 0;

  constructor(private readonly gateway: ConnectionGateway) {}

  send(connectionId: string, data: Buffer): Promise<DeliveryResult> {
    this.posts += 1;
    this.bytes += data.length;
    return this.gateway.send(connectionId, data);
  }

  close(connectionId: string): Promise<void> {
    this.closes += 1;
    return this.gateway.close(connectionId);
  }

  snapshot(): DeliverySnapshot {
    return { posts: this.posts, bytes: this.bytes, closes: this.closes };
  }
}

/** Everything the harness counts, read by `npm run bench`. */
export interface HarnessMeters {
  readonly dynamoDb: CapacityMeter;
  readonly invocations: InvocationMeter;
  readonly deliveries: MeteredGateway;
}

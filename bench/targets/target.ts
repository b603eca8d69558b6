/** A broker the load generator drives: the local harness, Mosquitto, or anything on host:port. */
import type { Endpoint } from '../load/client';
import type { GatewaySnapshot, InvocationSnapshot, LimitSnapshot } from '../../local/meters';

export interface MemorySample {
  readonly rssBytes: number;
  /** V8 heap in use (Node brokers only), after a garbage collection when one was asked for. */
  readonly heapUsedBytes?: number;
}

/** The local harness's counters: what AWS would bill by the request. */
export interface HarnessCounters {
  readonly dynamoDb: { readonly calls: number; readonly readUnits: number; readonly writeUnits: number };
  readonly invocations: InvocationSnapshot;
  readonly gateway: GatewaySnapshot;
  /** What AWS's limits (local/aws-limits.ts) refused or throttled. */
  readonly limits?: LimitSnapshot;
}

export interface BrokerSnapshot {
  /** The harness only. */
  readonly counters?: HarnessCounters;
  /** CPU time of the broker's process, and of DynamoDB Local's when the bench started one. */
  readonly cpuMs?: { readonly broker: number; readonly dynamoDbLocal?: number };
  readonly memory?: MemorySample;
}

export interface BrokerTarget {
  /** Names the broker in the report, e.g. "serverless (harness)", "mosquitto 2.0.11". */
  readonly name: string;
  readonly endpoint: Endpoint;
  snapshot(options?: { readonly gc?: boolean }): Promise<BrokerSnapshot>;
  /** Resolves once the broker has finished earlier work (the close handlers of the last scenario's clients). */
  quiesce(): Promise<void>;
  stop(): Promise<void>;
}

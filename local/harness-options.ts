/**
 * What the local harness (harness.ts) is started with, and what it answers: its addresses, its
 * store and meters for tests and the benchmark, and the switches that stop or restart its parts.
 */
import type { BrokerStats } from '../shared/broker/stats';
import type { DynamoStatsStore } from '../shared/store/dynamo-stats';
import type { SequencerOptions } from '../shared/broker/sequencer';
import type { SweepResult, SweeperOptions } from '../shared/broker/sweeper';
import type { ConnectionDirectory } from '../shared/broker/ports';
import type { BrokerConfig } from '../shared/broker/context';
import type { LogLevel } from '../shared/util/logger';
import type { SecurityPolicy } from '../shared/security/broker-security';
import type { DynamoSecurityStore } from '../shared/store/dynamo-security';
import type { DoorOptions } from '../shared/gateway/door-limits';
import type { ListenerLimits, ListenerStats } from '../shared/listener/listener';
import type { StoreRetryOptions } from '../shared/store/store-errors';
import type { DynamoStore } from '../shared/store/create-dynamo-store';
import type { TableNames } from '../shared/store/tables';
import type { EmulatorOptions } from './apigw-emulator';
import type { ClientCertificateOptions } from '../shared/listener/client-certificate';
import type { HarnessMeters } from './meters';
import type { AwsLimits, AwsLimitSettings } from './aws-limits';
import type { FaultOptions } from './faults';
import type { RuleConfig } from '../shared/rules/rule-config';
import type { BackoffPolicy } from '../shared/util/backoff-retry';
import type { LocalRuleTargetOptions } from './rule-targets';

export interface HarnessOptions {
  /** The address the MQTT doors, the delivery endpoint, the API Gateway emulator and the console bind (loopback by default); DynamoDB Local always binds loopback. */
  readonly host?: string;
  readonly mqttPort?: number;
  readonly wsPort?: number;
  readonly apigwPort?: number;
  /** Port for the DynamoDB Local this harness starts. */
  readonly dynamoDbPort?: number;
  /** An existing DynamoDB to use instead; then none is started. */
  readonly dynamoDbEndpoint?: string;
  /** Prefix of the table names, so several harnesses can share one DynamoDB. */
  readonly tablePrefix?: string;
  readonly logLevel?: LogLevel;
  readonly maximumPacketSize?: number;
  /** The API Gateway emulator's switches: `$default` jitter, lost `$disconnect`s, idle and maximum lifetimes, the `@connections` rate (else the cloud limits'). */
  readonly apigw?: Pick<EmulatorOptions, 'jitterMs' | 'random' | 'dropDisconnect' | 'idleTimeoutMs' | 'maxConnectionMs' | 'connectionsRequestsPerSecond'>;
  /** The API Gateway door's inbound ordering (lease and gap timeouts). */
  readonly sequencing?: Partial<SequencerOptions>;
  /** How often the sweeper runs (the cloud schedules it every minute). */
  readonly sweepIntervalMs?: number;
  /** The sweeper's bounds per run (shared/broker/sweeper.ts) over the cloud's. */
  readonly sweeper?: Partial<SweeperOptions>;
  /** How often the counters are flushed and the $SYS/broker/ figures published (default 5 s; the cloud's sweeper does it every minute). */
  readonly sysIntervalMs?: number;
  /** Serve the HTTP door (HTTP publish, server-sent events: local/http-server.ts) on this port (0: any free one); none when absent. */
  readonly httpPort?: number;
  /** How often a server-sent events stream carries a heartbeat (20 s by default). */
  readonly eventHeartbeatMs?: number;
  /** Serve the web console on this port (0: any free one); no console when absent. */
  readonly consolePort?: number;
  /** Broker settings over the defaults (Receive Maximum, Topic Alias Maximum...); same as `config`. */
  readonly broker?: Partial<BrokerConfig>;
  /** How often due wills are published and expired sessions ended (the cloud's scheduled sweeper). */
  readonly timerIntervalMs?: number;
  /** Authentication and ACL; default: anonymous clients allowed, no ACL (npm start says so). */
  readonly security?: SecurityPolicy;
  /** Limits (shared/broker/context.ts BrokerConfig) over the defaults. */
  readonly config?: Partial<BrokerConfig>;
  /** What the doors carry (keep-alive limits, shared/gateway/door-limits.ts) over the cloud's. */
  readonly doors?: Partial<DoorOptions>;
  /** How long the listener waits for a socket's CONNECT. */
  readonly connectTimeoutMs?: number;
  /**
   * The listener's own limits over its defaults (outbound buffer, CONNECT size, connections per
   * task and per address; shared/listener/listener.ts), and whether its MQTT and WebSocket ports
   * expect a PROXY protocol v2 header. Unlike the cloud's listener and `npm start`, the harness
   * caps connections per address only when `maxConnectionsPerAddress` is given here: its
   * clients (tests, the benchmark) all come from one address.
   */
  readonly listener?: Partial<ListenerLimits> & { readonly proxyProtocol?: boolean };
  /** MQTT over TLS on this port; without cert and key (PEM), a self-signed certificate is made at start. */
  readonly tls?: {
    readonly port: number;
    readonly wssPort?: number;
    readonly cert?: string;
    readonly key?: string;
    /** Devices on the mqtts port present a certificate from this CA (shared/listener/tls-door.ts). */
    readonly clientCertificates?: ClientCertificateOptions;
  };
  /** Attempts and timeouts of DynamoDB calls; default: the cloud's, with a longer request timeout (DynamoDB Local is slower). */
  readonly storeRetry?: Partial<StoreRetryOptions>;
  /**
   * Fault injection, for the chaos tests; off by default. With probability `handlerFailure`, an
   * invocation of the listener's packet handler fails: half of them before the handler runs (as a
   * Lambda that never started), half after it ran (as one that died before answering). The
   * listener then closes that connection, as it does when a Lambda invoke fails. The probability
   * is read at every invocation, so a test may change it as it goes.
   */
  readonly faults?: FaultOptions;
  /**
   * AWS's quotas the harness enforces (local/aws-limits.ts): the scale of the per-second quotas
   * and Lambda's concurrency. Default: AWS_LIMITS_SCALE and LAMBDA_CONCURRENCY from the
   * environment, else AWS's own (scale 1, 1,000).
   */
  readonly awsLimits?: AwsLimitSettings;
  /**
   * The operator's rules (docs/rules.md) and how the harness reaches their targets
   * (local/rule-targets.ts): `lambda` targets by these functions or module paths (resolved from
   * `baseDir`), SQS, Kinesis and EventBridge through these clients or the SDK's defaults;
   * `retry` over the engine's bounds.
   */
  readonly rules?: { readonly rules: readonly RuleConfig[]; readonly baseDir?: string; readonly retry?: BackoffPolicy } & Omit<LocalRuleTargetOptions, 'log' | 'baseDir'>;
}

export interface Harness {
  readonly mqttUrl: string;
  readonly wsUrl: string;
  readonly apigwUrl: string;
  readonly mqttPort: number;
  readonly wsPort: number;
  readonly apigwPort: number;
  readonly dynamoDbEndpoint: string;
  readonly deliveryEndpoint: string;
  /** The secret the delivery endpoint's requests are signed with (shared/gateway/delivery-signature.ts). */
  readonly deliverySecret: string;
  /** The HTTP door (HTTP publish, server-sent events), when `httpPort` was given. */
  readonly httpUrl?: string;
  readonly httpPort?: number;
  /** The web console, when `consolePort` was given. */
  readonly consoleUrl?: string;
  readonly tables: TableNames;
  /** The broker's store, without injected faults (for tests' own reads and writes; the cloud limits apply to it too). */
  readonly store: DynamoStore;
  /** The sweeper's view of the connections: owners, the listener task registry (tests register tasks through it). */
  readonly directory: ConnectionDirectory;
  /** Users, door identities and rate counters (tests add users through it). */
  readonly securityStore: DynamoSecurityStore;
  readonly security: SecurityPolicy;
  /** scrypt password verifications the handlers made so far (repeats and limited addresses make none). */
  passwordHashes(): number;
  /** With `tls`: the mqtts URL and port, and the certificate a client trusts (PEM). */
  readonly mqttsUrl?: string;
  readonly mqttsPort?: number;
  /** With `tls.wssPort`: the MQTT over secure WebSocket URL (wss://.../mqtt) and port, the same certificate. */
  readonly wssUrl?: string;
  readonly wssPort?: number;
  readonly tlsCertificate?: string;
  /** Runs the sweeper once, now, after any run in progress (it also runs every `sweepIntervalMs`). */
  sweep(): Promise<SweepResult>;
  /** `@connections` requests the API Gateway emulator answered, by method (GET: the sweeper's probes). */
  apigwRequests(): Readonly<Record<string, number>>;
  /** Flushes the counters and publishes the $SYS/broker/ figures once, now (also every `sysIntervalMs`). */
  publishSys(): Promise<void>;
  /** The broker's counters in this process (not flushed yet), and the fleet's sums as stored. */
  readonly stats: { readonly counters: BrokerStats; readonly store: DynamoStatsStore };
  /** DynamoDB calls and units, handler invocations, `@connections` calls, what AWS's limits refused: for `npm run bench`. */
  readonly meters: HarnessMeters;
  /** The AWS quotas in force (local/aws-limits.ts). */
  readonly awsLimits: AwsLimits;
  /** Changes Lambda's account concurrency from now on, as a raised quota would. */
  setLambdaConcurrency(concurrency: number): void;
  /** Faults injected so far (see HarnessOptions.faults): handler failures, and store calls failed. */
  readonly faults: { readonly injected: number; readonly storeFailures: number };
  /**
   * Kills the listener as SIGKILL kills a task: every client socket and the delivery endpoint gone
   * at once, and no close reported to the handler (the sweeper finds those connections gone).
   */
  killListener(): Promise<void>;
  /** A new listener on the same MQTT, WebSocket (and TLS) ports, with a new delivery endpoint. */
  restartListener(): Promise<void>;
  /** What the listener holds and has refused (outbound bytes, slow readers closed, connections refused). */
  listenerStats(): ListenerStats;
  stop(): Promise<void>;
}

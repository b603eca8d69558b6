/**
 * The whole broker on one machine: DynamoDB Local (or an existing DynamoDB), the tables, the
 * listener and the API Gateway emulator, wired to the same handlers as in the cloud through the
 * same JSON events.
 */
import { randomBytes } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createBrokerDeps, primeDeps } from '../functions/runtime';
import {
  createFanoutHandler,
  createPacketsHandler,
  createSweeperHandler,
  createWsConnectHandler,
  createWsDefaultHandler,
  createWsDisconnectHandler,
  publishSysFigures,
} from '../functions/handlers';
import type { BrokerStats } from '../shared/broker/stats';
import { sysMessages } from '../shared/broker/sys-topics';
import type { DynamoStatsStore } from '../shared/store/dynamo-stats';
import type { SequencerOptions } from '../shared/broker/sequencer';
import type { SweepResult, SweeperOptions } from '../shared/broker/sweeper';
import type { ConnectionDirectory } from '../shared/broker/ports';
import type { BrokerConfig } from '../shared/broker/context';
import type { FanoutJob } from '../shared/broker/ports';
import { createJsonLogger, type LogLevel } from '../shared/util/logger';
import { runDueTimers } from '../shared/broker/will';
import type { SecurityPolicy } from '../shared/security/broker-security';
import type { DynamoSecurityStore } from '../shared/store/dynamo-security';
import type { DoorOptions } from '../shared/gateway/door-limits';
import type { PacketSink } from '../shared/listener/events';
import { MqttListener, type ListenerLimits, type ListenerStats } from '../shared/listener/listener';
import { createTables } from '../shared/store/create-tables';
import type { StoreRetryOptions } from '../shared/store/store-errors';
import type { DynamoStore } from '../shared/store/create-dynamo-store';
import { localTableNames, type TableNames } from '../shared/store/tables';
import { ApiGatewayEmulator, type EmulatorOptions } from './apigw-emulator';
import { ConsoleServer } from './console-server';
import { HttpDoor } from './http-server';
import { createHttpPublishHandler } from '../functions/http-publish-handler';
import { startDynamoDbLocal, type RunningDynamoDb } from './dynamodb-local';
import { every } from './schedule';
import { generateSelfSignedCertificate } from './tls-certificate';
import type { ClientCertificateOptions } from '../shared/listener/client-certificate';
import { localCredentials, LOCAL_REGION } from './local-aws';
import { GatewayMeter, InvocationMeter, LimitMeter, type HarnessMeters } from './meters';
import { awsLimits, awsLimitSettingsFromEnv, type AwsLimits, type AwsLimitSettings } from './aws-limits';
import { enforceDynamoDbLimits } from './dynamodb-limits';
import { LambdaLimits, withSdkRetry } from './lambda-limits';
import { faulty, faultyStore, type FaultOptions } from './faults';
import type { RuleConfig } from '../shared/rules/rule-config';
import type { BackoffPolicy } from '../shared/util/backoff-retry';
import { localRuleTargets, type LocalRuleTargetOptions } from './rule-targets';

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

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const host = options.host ?? '127.0.0.1';
  const log = createJsonLogger(options.logLevel ?? 'info');
  const stops: Array<() => Promise<void>> = [];
  const stop = async (): Promise<void> => {
    for (const step of stops.reverse()) await step().catch((error) => log.warn('stop failed', { error: String(error) }));
  };
  try {
    let dynamoDb: RunningDynamoDb | undefined;
    if (!options.dynamoDbEndpoint) {
      // Loopback whatever `host` is: DynamoDB Local checks no credentials, and only this process
      // and the users CLI on this machine need it.
      dynamoDb = await startDynamoDbLocal(options.dynamoDbPort ?? 8000, '127.0.0.1');
      stops.push(() => dynamoDb!.stop());
    }
    const dynamoDbEndpoint = options.dynamoDbEndpoint ?? dynamoDb!.endpoint;
    const tables = localTableNames(options.tablePrefix ?? `mqtt-${randomBytes(4).toString('hex')}`);
    const admin = new DynamoDBClient({ endpoint: dynamoDbEndpoint, region: LOCAL_REGION, credentials: localCredentials });
    try {
      await createTables(admin, tables);
    } catch (error) {
      throw new Error(`cannot create tables on DynamoDB at ${dynamoDbEndpoint} (${String(error)}): is it running and reachable?`);
    } finally {
      admin.destroy();
    }

    const limits = awsLimits(options.awsLimits ?? awsLimitSettingsFromEnv(process.env));
    const limitMeter = new LimitMeter();
    // Every handler the harness invokes is one Lambda invocation: serialized, and limited as Lambda limits it.
    const lambda = new LambdaLimits(limits.lambda, limitMeter);
    const emulator = new ApiGatewayEmulator({
      host,
      port: options.apigwPort ?? 3001,
      log,
      connectionsRequestsPerSecond: limits.apiGateway.connectionsRequestsPerSecond,
      limitMeter,
      ...options.apigw,
    });
    const apigw = await emulator.start();
    stops.push(() => emulator.stop());

    const security = options.security ?? { allowAnonymous: true };
    const config = { ...options.broker, ...options.config, ...(options.maximumPacketSize ? { maximumPacketSize: options.maximumPacketSize } : {}) };
    const faults = { injected: 0, storeFailures: 0 };
    const invocations = new InvocationMeter();
    const gatewayMeter = new GatewayMeter();
    // Signs the handlers' requests to the listener's delivery endpoint; never leaves this process.
    const deliverySecret = randomBytes(32).toString('base64url');
    const rules = options.rules
      ? {
          rules: options.rules.rules,
          targets: await localRuleTargets(options.rules.rules, { ...options.rules, log }),
          ...(options.rules.retry ? { retry: options.rules.retry } : {}),
        }
      : undefined;
    const unmetered = createBrokerDeps({
      ...(rules ? { rules } : {}),
      tables,
      dynamoDb: { endpoint: dynamoDbEndpoint, region: LOCAL_REGION, credentials: localCredentials },
      // Every handler shares this one process's event loop: under a storm, a socket's connect event
      // (and a response) can wait behind it past the cloud's 1 s connection timeout, which a Lambda
      // container serving one invocation never sees; so the harness waits longer before it gives up.
      storeRetry: { requestTimeoutMs: 10_000, connectionTimeoutMs: 5_000, ...options.storeRetry },
      connections: {
        apiGatewayEndpoint: apigw.managementEndpoint,
        clientConfig: { region: LOCAL_REGION, credentials: localCredentials },
        listenerSecret: () => Promise.resolve(deliverySecret),
      },
      log,
      config,
      ...(options.doors ? { doors: options.doors } : {}),
      security,
      instrumentDynamoDb: (client) => enforceDynamoDbLimits(client, { limits, tables, meter: limitMeter }),
      // The fan-out function, invoked in-process with the job serialized as Lambda would carry it.
      fanout: (deps) => {
        const handler = withSdkRetry(
          lambda.wrap(
            invocations.wrap(
              'fanout',
              createFanoutHandler({ ...deps, store: faultyStore(deps.store, options.faults, faults), gateway: gatewayMeter.wrap(deps.gateway) }),
            ),
          ),
        );
        return { run: (job: FanoutJob) => handler(job) };
      },
    });
    const meters: HarnessMeters = { dynamoDb: unmetered.store.meter, invocations, gateway: gatewayMeter, limits: limitMeter };
    const deps = { ...unmetered, store: faultyStore(unmetered.store, options.faults, faults), gateway: gatewayMeter.wrap(unmetered.gateway) };
    // As a Lambda's init phase does (functions/packets.ts): the first CONNECT does not pay for the SDK's first calls.
    await primeDeps(unmetered);
    const invocation = meters.invocations;
    emulator.routes = {
      $connect: lambda.wrap(invocation.wrap('$connect', createWsConnectHandler(deps))),
      $default: lambda.wrap(invocation.wrap('$default', createWsDefaultHandler(deps, deps.inbox, options.sequencing))),
      $disconnect: lambda.wrap(invocation.wrap('$disconnect', createWsDisconnectHandler(deps, deps.inbox, options.sequencing))),
    };

    const certificate = options.tls
      ? options.tls.cert && options.tls.key
        ? { cert: options.tls.cert, key: options.tls.key }
        : await generateSelfSignedCertificate(host)
      : undefined;
    const { proxyProtocol: listenerProxyProtocol, ...listenerLimits } = options.listener ?? {};
    // Invoked in this process, with the event serialized and parsed as Lambda would.
    const sink: PacketSink = { invoke: withSdkRetry(lambda.wrap(faulty(invocation.wrap('packets', createPacketsHandler(deps, deps.directory)), options.faults, faults))) };
    const newListener = ({ mqttPort, wsPort, mqttsPort, wssPort }: { mqttPort: number; wsPort: number; mqttsPort?: number; wssPort?: number }) =>
      new MqttListener({
        host,
        mqttPort,
        wsPort,
        deliveryPort: 0,
        advertisedHost: host,
        deliverySecret,
        sink,
        log,
        ...(options.eventHeartbeatMs ? { eventHeartbeatMs: options.eventHeartbeatMs } : {}),
        ...(options.tls && certificate
          ? {
              tls: {
                port: mqttsPort ?? options.tls.port,
                ...(options.tls.wssPort !== undefined ? { wssPort: wssPort ?? options.tls.wssPort } : {}),
                ...certificate,
                ...(options.tls.clientCertificates ? { clientCertificates: options.tls.clientCertificates } : {}),
              },
            }
          : {}),
        proxyProtocol: listenerProxyProtocol ?? false,
        limits: {
          maximumPacketSize: deps.config.maximumPacketSize,
          keepAliveLimit: deps.doors.keepAlive.listener,
          ...(deps.config.maxKeepAlive !== undefined ? { maxKeepAlive: deps.config.maxKeepAlive } : {}),
          ...(options.connectTimeoutMs ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
          maxConnectionsPerAddress: Number.MAX_SAFE_INTEGER,
          ...listenerLimits,
        },
      });
    let listener = newListener({ mqttPort: options.mqttPort ?? 1883, wsPort: options.wsPort ?? 8083 });
    const addresses = await listener.start();
    let deliveryEndpoint = addresses.deliveryEndpoint;
    let killed = false;
    stops.push(() => (killed ? Promise.resolve() : listener.stop()));

    let httpUrl: string | undefined;
    if (options.httpPort !== undefined) {
      const httpDoor = new HttpDoor({
        host,
        port: options.httpPort,
        publish: lambda.wrap(invocation.wrap('http-publish', createHttpPublishHandler(deps))),
        // The listener of the moment: in the cloud the stream rides the listener's WebSocket port.
        events: (request, response, remoteAddress) => listener.serveEventStream(request, response, remoteAddress),
      });
      httpUrl = `http://${host}:${await httpDoor.start()}`;
      stops.push(() => httpDoor.stop());
    }

    let consoleUrl: string | undefined;
    if (options.consolePort !== undefined) {
      const consoleServer = new ConsoleServer({
        host,
        port: options.consolePort,
        apiGatewayUrl: apigw.url,
        // The figures the $SYS topics carry, as last flushed, and what this process has counted since.
        stats: async () => ({ figures: sysMessages(await deps.statsStore.totals(), Date.now()), pending: deps.stats.pending() }),
      });
      consoleUrl = await consoleServer.start();
      stops.push(() => consoleServer.stop());
    }

    const sweeperFunction = lambda.wrap(createSweeperHandler(deps, deps.directory, deps.gateway, deps.inbox, options.sweeper, deps.statsStore));
    // One run after another, as the lease has them in the cloud: a test's run never meets a scheduled one.
    let sweeping: Promise<unknown> = Promise.resolve();
    const sweep = (): Promise<SweepResult> => {
      const run = sweeping.then(() => sweeperFunction(undefined));
      sweeping = run.catch(() => undefined);
      return run;
    };
    const sweeper = every(options.sweepIntervalMs ?? 60_000, sweep, log);
    stops.push(sweeper.stop);
    // As the sweeper does in the cloud, more often, so the figures move while you watch.
    const publishSys = lambda.wrap(() => publishSysFigures(deps, deps.statsStore));
    const sysLoop = every(options.sysIntervalMs ?? 5_000, () => publishSys(undefined), log);
    stops.push(sysLoop.stop);
    // The timers (due wills, expired sessions), as the cloud's schedule runs them.
    const timers = every(options.timerIntervalMs ?? 1000, () => runDueTimers(deps), log);
    stops.push(async () => timers.stop());

    return {
      mqttUrl: `mqtt://${host}:${addresses.mqttPort}`,
      wsUrl: `ws://${host}:${addresses.wsPort}/mqtt`,
      apigwUrl: apigw.url,
      mqttPort: addresses.mqttPort,
      wsPort: addresses.wsPort,
      apigwPort: Number(new URL(apigw.url).port),
      dynamoDbEndpoint,
      get deliveryEndpoint() {
        return deliveryEndpoint;
      },
      deliverySecret,
      ...(consoleUrl ? { consoleUrl } : {}),
      ...(httpUrl ? { httpUrl, httpPort: Number(new URL(httpUrl).port) } : {}),
      tables,
      store: unmetered.store,
      securityStore: deps.securityStore,
      directory: deps.directory,
      security,
      passwordHashes: () => unmetered.security.passwordHashes,
      ...(addresses.mqttsPort !== undefined && certificate
        ? { mqttsUrl: `mqtts://${host}:${addresses.mqttsPort}`, mqttsPort: addresses.mqttsPort, tlsCertificate: certificate.cert }
        : {}),
      ...(addresses.wssPort !== undefined
        ? { wssUrl: `wss://${host}:${addresses.wssPort}/mqtt`, wssPort: addresses.wssPort }
        : {}),
      sweep,
      apigwRequests: () => ({ ...emulator.connectionsRequests }),
      publishSys: () => publishSys(undefined),
      stats: { counters: deps.stats, store: deps.statsStore },
      meters,
      awsLimits: limits,
      setLambdaConcurrency: (concurrency) => lambda.setConcurrency(concurrency),
      faults,
      killListener: async () => {
        killed = true;
        await listener.kill();
      },
      restartListener: async () => {
        // Same ports, as the load balancer's address stays; a new delivery endpoint, as a new task has.
        listener = newListener(addresses);
        deliveryEndpoint = (await listener.start()).deliveryEndpoint;
        killed = false;
      },
      listenerStats: () => listener.stats(),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

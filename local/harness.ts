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
import { sysMessages } from '../shared/broker/sys-topics';
import type { SweepResult } from '../shared/broker/sweeper';
import type { FanoutJob } from '../shared/broker/ports';
import { createJsonLogger } from '../shared/util/logger';
import { runDueTimers } from '../shared/broker/will';
import type { PacketSink } from '../shared/listener/events';
import { MqttListener } from '../shared/listener/listener';
import { createTables } from '../shared/store/create-tables';
import { localTableNames } from '../shared/store/tables';
import { ApiGatewayEmulator } from './apigw-emulator';
import { ConsoleServer } from './console-server';
import { HttpDoor } from './http-server';
import { createHttpPublishHandler } from '../functions/http-publish-handler';
import { startDynamoDbLocal, type RunningDynamoDb } from './dynamodb-local';
import { every } from './schedule';
import { generateSelfSignedCertificate } from './tls-certificate';
import { localCredentials, LOCAL_REGION } from './local-aws';
import { GatewayMeter, InvocationMeter, LimitMeter, type HarnessMeters } from './meters';
import { awsLimits, awsLimitSettingsFromEnv } from './aws-limits';
import { enforceDynamoDbLimits } from './dynamodb-limits';
import { LambdaLimits, withSdkRetry } from './lambda-limits';
import { faulty, faultyStore } from './faults';
import { localRuleTargets } from './rule-targets';
import type { Harness, HarnessOptions } from './harness-options';

export type { Harness, HarnessOptions } from './harness-options';

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

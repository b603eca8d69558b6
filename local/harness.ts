/**
 * The whole broker on one machine: DynamoDB Local (or an existing DynamoDB), the tables, the
 * listener and the API Gateway emulator, wired to the same handlers as in the cloud through the
 * same JSON events.
 */
import { randomBytes } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createBrokerDeps } from '../functions/runtime';
import {
  createPacketsHandler,
  createWsConnectHandler,
  createWsDefaultHandler,
  createWsDisconnectHandler,
} from '../functions/handlers';
import { createJsonLogger, type LogLevel } from '../shared/broker/logger';
import type { ListenerEvent, PacketSink } from '../shared/listener/events';
import { MqttListener } from '../shared/listener/listener';
import { createTables } from '../shared/store/create-tables';
import type { DynamoBrokerStore } from '../shared/store/dynamo-store';
import { localTableNames, type TableNames } from '../shared/store/tables';
import { ApiGatewayEmulator } from './apigw-emulator';
import { startDynamoDbLocal, type RunningDynamoDb } from './dynamodb-local';
import { localCredentials, LOCAL_REGION } from './local-aws';
import { GatewayMeter, InvocationMeter, type HarnessMeters } from './meters';

export interface HarnessOptions {
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
  readonly tables: TableNames;
  readonly store: DynamoBrokerStore;
  /** DynamoDB calls and units, handler invocations, `@connections` calls: for `npm run bench`. */
  readonly meters: HarnessMeters;
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
      dynamoDb = await startDynamoDbLocal(options.dynamoDbPort ?? 8000, host);
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

    const emulator = new ApiGatewayEmulator({ host, port: options.apigwPort ?? 3001, log });
    const apigw = await emulator.start();
    stops.push(() => emulator.stop());

    const unmetered = createBrokerDeps({
      tables,
      dynamoDb: { endpoint: dynamoDbEndpoint, region: LOCAL_REGION, credentials: localCredentials },
      connections: {
        apiGatewayEndpoint: apigw.managementEndpoint,
        clientConfig: { region: LOCAL_REGION, credentials: localCredentials },
      },
      log,
      ...(options.maximumPacketSize ? { config: { maximumPacketSize: options.maximumPacketSize } } : {}),
    });
    const meters: HarnessMeters = {
      dynamoDb: unmetered.store.meter,
      invocations: new InvocationMeter(),
      gateway: new GatewayMeter(),
    };
    const deps = { ...unmetered, gateway: meters.gateway.wrap(unmetered.gateway) };
    const invocation = meters.invocations;
    emulator.routes = {
      $connect: invocation.wrap('$connect', createWsConnectHandler()),
      $default: invocation.wrap('$default', createWsDefaultHandler(deps)),
      $disconnect: invocation.wrap('$disconnect', createWsDisconnectHandler(deps)),
    };

    const listener = new MqttListener({
      host,
      mqttPort: options.mqttPort ?? 1883,
      wsPort: options.wsPort ?? 8083,
      deliveryPort: 0,
      advertisedHost: host,
      sink: inProcessSink(invocation.wrap('packets', createPacketsHandler(deps))),
      log,
      ...(options.maximumPacketSize ? { limits: { maximumPacketSize: options.maximumPacketSize } } : {}),
    });
    const addresses = await listener.start();
    stops.push(() => listener.stop());

    return {
      mqttUrl: `mqtt://${host}:${addresses.mqttPort}`,
      wsUrl: `ws://${host}:${addresses.wsPort}/mqtt`,
      apigwUrl: apigw.url,
      mqttPort: addresses.mqttPort,
      wsPort: addresses.wsPort,
      apigwPort: Number(new URL(apigw.url).port),
      dynamoDbEndpoint,
      deliveryEndpoint: addresses.deliveryEndpoint,
      tables,
      store: deps.store,
      meters,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Invokes the packet handler in this process, with the event serialized and parsed as Lambda would. */
function inProcessSink(handler: (event: ListenerEvent) => Promise<void>): PacketSink {
  return { invoke: (event) => handler(JSON.parse(JSON.stringify(event)) as ListenerEvent) };
}

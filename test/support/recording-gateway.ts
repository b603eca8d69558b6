/**
 * The network's edge for tests that call the broker's handlers directly: a gateway that records
 * what the handlers send instead of delivering it (what it records is what a client would
 * receive), and broker deps on tables of their own on the shared DynamoDB Local that use it.
 */
import mqttPacket, { type Packet } from 'mqtt-packet';
import { randomBytes } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { inject } from 'vitest';
import { createBrokerDeps } from '../../functions/runtime';
import type { BrokerConfig, BrokerDeps } from '../../shared/broker/context';
import type { ConnectionGateway, DeliveryResult, Logger } from '../../shared/broker/ports';
import { createTables } from '../../shared/store/create-tables';
import { localTableNames } from '../../shared/store/tables';
import { localCredentials, LOCAL_REGION } from '../../local/local-aws';

export class RecordingGateway implements ConnectionGateway {
  readonly sent = new Map<string, Buffer[]>();
  readonly closed = new Set<string>();
  /** Connections sent to after they were closed (there should be none). */
  readonly afterClose: string[] = [];

  async send(connectionId: string, data: Buffer): Promise<DeliveryResult> {
    if (this.closed.has(connectionId)) this.afterClose.push(connectionId);
    this.sent.set(connectionId, [...(this.sent.get(connectionId) ?? []), data]);
    return 'delivered';
  }

  async sendMany(deliveries: ReadonlyArray<readonly [string, Buffer]>): Promise<Map<string, DeliveryResult>> {
    const results = new Map<string, DeliveryResult>();
    for (const [connectionId, data] of deliveries) results.set(connectionId, await this.send(connectionId, data));
    return results;
  }

  async close(connectionId: string): Promise<void> {
    this.closed.add(connectionId);
  }

  /** What a client of `version` on this connection received, as packets. */
  packets(connectionId: string, version: 4 | 5 = 5): Packet[] {
    const received: Packet[] = [];
    const parser = mqttPacket.parser({ protocolVersion: version });
    parser.on('packet', (packet: Packet) => received.push(packet));
    parser.on('error', (error: Error) => {
      throw new Error(`the broker sent bytes a v${version} client cannot parse: ${error.message}`);
    });
    for (const bytes of this.sent.get(connectionId) ?? []) parser.parse(bytes);
    return received;
  }
}

/** Broker deps on new tables (named `<prefix>-…`) on the shared DynamoDB Local, sending through `gateway`. */
export async function recordingDeps(
  prefix: string,
  gateway: RecordingGateway,
  options: { log: Logger; config?: Partial<BrokerConfig> },
): Promise<BrokerDeps> {
  const endpoint = inject('dynamoDbEndpoint');
  const tables = localTableNames(`${prefix}-${randomBytes(4).toString('hex')}`);
  const admin = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: localCredentials });
  await createTables(admin, tables);
  admin.destroy();
  const deps = createBrokerDeps({
    tables,
    dynamoDb: { endpoint, region: LOCAL_REGION, credentials: localCredentials },
    security: { allowAnonymous: true },
    log: options.log,
    ...(options.config ? { config: options.config } : {}),
  });
  return { ...deps, gateway };
}

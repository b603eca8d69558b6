/** QoS 2 receipts in DynamoDB: `in#<packet id>` items in the publisher's session partition. */
import type { QoS2Receipt, ReceiptStore } from '../broker/ports';
import type { DynamoTable } from './dynamo-table';
import { IN_PREFIX, type SequenceGenerator } from './session-items';

export class DynamoReceiptStore implements ReceiptStore {
  constructor(
    private readonly table: DynamoTable,
    private readonly sequence: SequenceGenerator,
    private readonly now: () => number,
  ) {}

  async receiveQos2(clientId: string, packetId: number): Promise<QoS2Receipt> {
    const received = { clientId, sk: IN_PREFIX + packetId, receiptId: `${packetId}#${this.sequence.next()}`, receivedAt: this.now() };
    if (await this.table.putIf({ Item: received, ConditionExpression: 'attribute_not_exists(sk)' })) return { clientId, id: received.receiptId, routed: false };
    const known = await this.table.get({ clientId, sk: received.sk });
    // Released meanwhile (a PUBREL overtook this resend): remembered again as new.
    if (!known) return this.receiveQos2(clientId, packetId);
    return { clientId, id: String(known.receiptId ?? packetId), routed: known.routed === true };
  }

  async markQos2Routed(clientId: string, packetId: number): Promise<void> {
    await this.table.updateIf({
      Key: { clientId, sk: IN_PREFIX + packetId },
      UpdateExpression: 'SET routed = :yes',
      ConditionExpression: 'attribute_exists(sk)',
      ExpressionAttributeValues: { ':yes': true },
    });
  }

  async releaseIncomingQos2(clientId: string, packetId: number): Promise<boolean> {
    return (await this.table.delete({ Key: { clientId, sk: IN_PREFIX + packetId }, ReturnValues: 'ALL_OLD' })) !== undefined;
  }

  async countIncomingQos2(clientId: string): Promise<number> {
    return this.table.count({ KeyConditionExpression: 'clientId = :c AND begins_with(sk, :i)', ExpressionAttributeValues: { ':c': clientId, ':i': IN_PREFIX } });
  }
}

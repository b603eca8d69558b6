import { Stack, type CfnElement, type RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Grant, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import {
  brokerTables,
  connectionsTable,
  inboxTable,
  retainedTable,
  securityTable,
  sessionsTable,
  subscriptionsTable,
  type KeyAttribute,
} from '../../shared/store/tables';

/**
 * What a function may do with the Security table, by item: each use is one action on the items
 * whose key starts with its prefix (shared/store/dynamo-security.ts). Nothing here writes a user:
 * the users CLI does, with the deployer's own credentials.
 */
export type SecurityUse = 'read users' | 'count rates' | 'take door identities' | 'remember door identities';

const securityUses: Record<SecurityUse, { action: string; keyPrefix: string }> = {
  'read users': { action: 'dynamodb:GetItem', keyPrefix: 'user#' },
  'count rates': { action: 'dynamodb:UpdateItem', keyPrefix: 'rate#' },
  'take door identities': { action: 'dynamodb:DeleteItem', keyPrefix: 'door#' },
  'remember door identities': { action: 'dynamodb:PutItem', keyPrefix: 'door#' },
};

/** The broker's state proper: sessions, routes, retained messages and the connections' items. */
const stateTables = [connectionsTable, sessionsTable, subscriptionsTable, retainedTable];

export interface BrokerTablesProps {
  readonly removalPolicy: RemovalPolicy;
}

const attributeTypes: Record<KeyAttribute['type'], AttributeType> = {
  S: AttributeType.STRING,
  N: AttributeType.NUMBER,
  B: AttributeType.BINARY,
};

const toAttribute = (key: KeyAttribute) => ({ name: key.name, type: attributeTypes[key.type] });

/** The broker's DynamoDB tables, built from the definitions local/ also uses so the two cannot drift. */
export class BrokerTables extends Construct {
  /** Tables by their definition's id (e.g. `Sessions`). */
  readonly tables: ReadonlyMap<string, Table>;

  constructor(scope: Construct, id: string, props: BrokerTablesProps) {
    super(scope, id);
    this.tables = new Map(
      brokerTables.map((def) => {
        // No tableName: CDK-generated names let two stacks share an account.
        const table = new Table(this, def.id, {
          partitionKey: toAttribute(def.partitionKey),
          sortKey: def.sortKey && toAttribute(def.sortKey),
          timeToLiveAttribute: def.timeToLiveAttribute,
          billingMode: BillingMode.PAY_PER_REQUEST,
          pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
          encryption: TableEncryption.AWS_MANAGED,
          removalPolicy: props.removalPolicy,
        });
        for (const index of def.globalIndexes ?? []) {
          table.addGlobalSecondaryIndex({
            indexName: index.name,
            partitionKey: toAttribute(index.partitionKey),
            sortKey: index.sortKey && toAttribute(index.sortKey),
            ...(index.include ? { projectionType: ProjectionType.INCLUDE, nonKeyAttributes: [...index.include] } : {}),
          });
        }
        return [def.id, table] as const;
      }),
    );
  }

  table(id: string): Table {
    const table = this.tables.get(id);
    if (!table) throw new Error(`no broker table with id ${id}`);
    return table;
  }

  /** Environment for entry points: each definition's envVar -> the table's deployed name. */
  environment(): Record<string, string> {
    return Object.fromEntries(brokerTables.map((def) => [def.envVar, this.table(def.id).tableName]));
  }

  /** Read and write the broker's state (Connections, Sessions and its timer index, Subscriptions, Retained). */
  grantState(grantee: IGrantable): void {
    for (const def of stateTables) this.table(def.id).grantReadWriteData(grantee);
  }

  /** Read and write the API Gateway door's inbox (the `$default` ordering). */
  grantInbox(grantee: IGrantable): void {
    this.table(inboxTable.id).grantReadWriteData(grantee);
  }

  /** The Security table's items, for these uses only (IAM's dynamodb:LeadingKeys holds each action to its key prefix). */
  grantSecurity(grantee: IGrantable, uses: readonly SecurityUse[]): void {
    const table = this.table(securityTable.id);
    for (const use of uses) {
      const { action, keyPrefix } = securityUses[use];
      Grant.addToPrincipal({
        grantee,
        actions: [action],
        resourceArns: [table.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${keyPrefix}*`] } },
      });
    }
  }

  /** The cdk-nag findings a state grant raises for the tables' indexes (`<table>/index/*`), by finding id. */
  indexGrantFindings(): string[] {
    return stateTables
      .filter((def) => (def.globalIndexes ?? []).length > 0)
      .map((def) => {
        const table = this.table(def.id);
        const logicalId = Stack.of(table).getLogicalId(table.node.defaultChild as CfnElement);
        return `AwsSolutions-IAM5[Resource::<${logicalId}.Arn>/index/*]`;
      });
  }
}

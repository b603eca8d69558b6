import { Stack, type CfnElement, type RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import type { IGrantable } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { brokerTables, type KeyAttribute } from '../../shared/store/tables';

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

  grantReadWriteData(grantee: IGrantable): void {
    for (const table of this.tables.values()) table.grantReadWriteData(grantee);
  }

  /** The cdk-nag findings a grant raises for the tables' indexes (`<table>/index/*`), by finding id. */
  indexGrantFindings(): string[] {
    return brokerTables
      .filter((def) => (def.globalIndexes ?? []).length > 0)
      .map((def) => {
        const table = this.table(def.id);
        const logicalId = Stack.of(table).getLogicalId(table.node.defaultChild as CfnElement);
        return `AwsSolutions-IAM5[Resource::<${logicalId}.Arn>/index/*]`;
      });
  }
}

import { CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { BrokerTables } from './constructs/broker-tables';

/** Context `removalPolicy`: 'retain' (default) keeps broker state when the stack goes; 'destroy' suits dev stacks. */
function removalPolicyFromContext(scope: Construct): RemovalPolicy {
  const value: unknown = scope.node.tryGetContext('removalPolicy') ?? 'retain';
  if (value === 'retain') return RemovalPolicy.RETAIN;
  if (value === 'destroy') return RemovalPolicy.DESTROY;
  throw new Error(`context removalPolicy must be 'destroy' or 'retain', got ${JSON.stringify(value)}`);
}

export class BrokerStack extends Stack {
  readonly tables: BrokerTables;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    this.tables = new BrokerTables(this, 'Tables', { removalPolicy: removalPolicyFromContext(this) });
    for (const [tableId, table] of this.tables.tables) {
      new CfnOutput(this, `${tableId}TableName`, { value: table.tableName });
    }
  }
}

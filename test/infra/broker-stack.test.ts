import { Match, type Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { brokerTables } from '../../shared/store/tables';
import { synthBroker } from './stack-fixture';

const synth = (context?: Record<string, string>): Template => synthBroker(context).template;

describe('BrokerStack tables', () => {
  const template = synth();

  it('creates exactly the tables that shared/store/tables.ts defines', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', brokerTables.length);
  });

  for (const def of brokerTables) {
    it(`${def.id}: key schema, on-demand, TTL, PITR, AWS-managed encryption`, () => {
      const keys = [def.partitionKey, ...(def.sortKey ? [def.sortKey] : [])];
      const indexKeys = (def.globalIndexes ?? []).flatMap((index) => [index.partitionKey, ...(index.sortKey ? [index.sortKey] : [])]);
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        KeySchema: keys.map((k, i) => ({ AttributeName: k.name, KeyType: i === 0 ? 'HASH' : 'RANGE' })),
        // Each attribute once, though an index may key on the table's own key (Connections' owner index).
        AttributeDefinitions: Match.arrayWith([...new Map([...keys, ...indexKeys].map((k) => [k.name, k])).values()].map((k) => ({ AttributeName: k.name, AttributeType: k.type }))),
        GlobalSecondaryIndexes: def.globalIndexes
          ? def.globalIndexes.map((index) =>
              Match.objectLike({
                IndexName: index.name,
                KeySchema: [
                  { AttributeName: index.partitionKey.name, KeyType: 'HASH' },
                  ...(index.sortKey ? [{ AttributeName: index.sortKey.name, KeyType: 'RANGE' }] : []),
                ],
                Projection: index.include ? { ProjectionType: 'INCLUDE', NonKeyAttributes: [...index.include] } : { ProjectionType: 'ALL' },
              }),
            )
          : Match.absent(),
        BillingMode: 'PAY_PER_REQUEST',
        TimeToLiveSpecification: def.timeToLiveAttribute
          ? { AttributeName: def.timeToLiveAttribute, Enabled: true }
          : Match.absent(),
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
      });
    });

    it(`${def.id}: its name is a stack output`, () => {
      template.hasOutput(`${def.id}TableName`, {});
    });
  }

  it('lets CDK name every table, so two stacks can share an account', () => {
    for (const table of Object.values(template.findResources('AWS::DynamoDB::Table'))) {
      expect(table.Properties).not.toHaveProperty('TableName');
    }
  });

  it('gives entry points every table name through its envVar', () => {
    const { stack } = synthBroker();
    expect(Object.keys(stack.tables.environment()).sort()).toEqual(brokerTables.map((d) => d.envVar).sort());
  });
});

describe('removalPolicy context', () => {
  const deletionPolicies = (template: Template) =>
    Object.values(template.findResources('AWS::DynamoDB::Table')).map((t) => t.DeletionPolicy);

  it('retains tables by default', () => {
    expect(deletionPolicies(synth())).toEqual(brokerTables.map(() => 'Retain'));
  });

  it("deletes tables with removalPolicy 'destroy'", () => {
    expect(deletionPolicies(synth({ removalPolicy: 'destroy' }))).toEqual(brokerTables.map(() => 'Delete'));
  });

  it("retains tables with removalPolicy 'retain'", () => {
    expect(deletionPolicies(synth({ removalPolicy: 'retain' }))).toEqual(brokerTables.map(() => 'Retain'));
  });

  it('rejects an unknown value', () => {
    expect(() => synth({ removalPolicy: 'snapshot' })).toThrow(/removalPolicy/);
  });
});

/**
 * The paths between the parts, and nothing more: who may invoke what, who may manage which
 * connections, and which security-group rules let traffic through.
 */
import type { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { brokerTables } from '../../shared/store/tables';
import { logicalId, synthBroker } from './stack-fixture';

const synthesized = synthBroker();
const { template, stack } = synthesized;
const id = (construct: { node: { defaultChild?: unknown } }) => logicalId(synthesized, construct);
const groupId = (construct: { node: { defaultChild?: unknown } }) => ({ 'Fn::GetAtt': [id(construct), 'GroupId'] });

const { packets: packetHandler, wsConnect, wsDefault, wsDisconnect } = stack.handlers;
const deliveringFunctions = { packetHandler, wsDefault, wsDisconnect, fanout: stack.fanout, httpPublish: stack.httpPublish };

interface Statement {
  Action: string | string[];
  Effect: string;
  Resource: unknown;
}

/** Every statement of the inline policies attached to a role. */
function statementsOf(t: Template, roleLogicalId: string): Statement[] {
  return Object.values(t.findResources('AWS::IAM::Policy'))
    .filter((p) => (p.Properties.Roles as unknown[]).some((r) => JSON.stringify(r) === JSON.stringify({ Ref: roleLogicalId })))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
}

const actions = (s: Statement) => [s.Action].flat();

describe('IAM', () => {
  it("the listener's task role may invoke the packet handler and nothing else", () => {
    const role = id(stack.deviceListener.taskDefinition.taskRole);
    expect(statementsOf(template, role)).toEqual([
      { Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: { 'Fn::GetAtt': [id(packetHandler), 'Arn'] } },
    ]);
    expect(template.findResources('AWS::IAM::Role')[role]!.Properties.ManagedPolicyArns).toBeUndefined();
  });

  it('the functions that route messages may invoke the fan-out worker and nothing else; no other role may invoke a function', () => {
    const invokers = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) =>
      (p.Properties.PolicyDocument.Statement as Statement[]).some((s) => actions(s).some((a) => a.startsWith('lambda:'))),
    );
    const routers = [packetHandler, wsDefault, wsDisconnect, stack.sweeper, stack.httpPublish].map((fn) => id(fn.role!));
    expect(invokers.flatMap((p) => p.Properties.Roles as Array<{ Ref: string }>).map((r) => r.Ref).sort()).toEqual(
      [id(stack.deviceListener.taskDefinition.taskRole), ...routers].sort(),
    );
    for (const role of routers) {
      expect(statementsOf(template, role).filter((s) => actions(s).some((a) => a.startsWith('lambda:')))).toEqual([
        { Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: { 'Fn::GetAtt': [id(stack.fanout), 'Arn'] } },
      ]);
    }
  });

  it("the delivering functions may manage this API's connections only", () => {
    const thisApi = {
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':execute-api:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':', { Ref: id(stack.browserDoor.api) }, '/*/*/@connections/*']],
    };
    for (const fn of Object.values(deliveringFunctions)) {
      const manage = statementsOf(template, id(fn.role!)).filter((s) => actions(s).some((a) => a.startsWith('execute-api:')));
      expect(manage).toEqual([{ Action: 'execute-api:ManageConnections', Effect: 'Allow', Resource: thisApi }]);
    }
  });

  describe('DynamoDB: each function the tables its code path touches, and no more', () => {
    const state = ['Connections', 'Sessions', 'Subscriptions', 'Retained'];
    const handlesPackets = ['dynamodb:GetItem on user#*', 'dynamodb:UpdateItem on rate#*'];
    const expected: Record<string, { readWrite: string[]; security: string[] }> = {
      PacketHandler: { readWrite: [...state, 'Inbox'], security: handlesPackets },
      WsDefault: { readWrite: [...state, 'Inbox'], security: [...handlesPackets, 'dynamodb:DeleteItem on door#*'] },
      WsDisconnect: { readWrite: [...state, 'Inbox'], security: [...handlesPackets, 'dynamodb:DeleteItem on door#*'] },
      Fanout: { readWrite: state, security: [] },
      Sweeper: { readWrite: [...state, 'Inbox'], security: [] },
      HttpPublish: { readWrite: state, security: handlesPackets },
      WsConnect: { readWrite: [], security: ['dynamodb:PutItem on door#*'] },
    };
    const functionsById = { PacketHandler: packetHandler, WsDefault: wsDefault, WsDisconnect: wsDisconnect, Fanout: stack.fanout, Sweeper: stack.sweeper, WsConnect: wsConnect, HttpPublish: stack.httpPublish };
    const tableArn = (tableId: string) => ({ 'Fn::GetAtt': [id(stack.tables.table(tableId)), 'Arn'] });
    const tableOf = (resource: unknown): string => {
      const def = brokerTables.find((d) => [tableArn(d.id), { 'Fn::Join': ['', [tableArn(d.id), '/index/*']] }].some((r) => JSON.stringify(r) === JSON.stringify(resource)));
      if (!def) throw new Error(`not a broker table: ${JSON.stringify(resource)}`);
      return def.id;
    };
    const conditionOf = (s: Statement) => (s as Statement & { Condition?: Record<string, Record<string, string[]>> }).Condition;

    it('covers every function of the stack', () => {
      expect(Object.keys(functionsById).sort()).toEqual(stack.functions.all.map((fn) => fn.node.id).sort());
    });

    for (const [name, want] of Object.entries(expected)) {
      it(`${name}: read/write on ${want.readWrite.join(', ') || 'no table'}; Security: ${want.security.join(', ') || 'nothing'}`, () => {
        const dynamo = statementsOf(template, id(functionsById[name as keyof typeof functionsById].role!)).filter((s) => actions(s).some((a) => a.startsWith('dynamodb:')));
        const whole = dynamo.filter((s) => !conditionOf(s));
        expect(new Set(whole.flatMap((s) => [s.Resource].flat().map(tableOf)))).toEqual(new Set(want.readWrite));
        if (want.readWrite.length > 0) {
          expect(whole.flatMap(actions)).toEqual(expect.arrayContaining(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Query']));
        }
        // An index only where its table is granted (a grant on Sessions carries the timer index, on Connections the owner index).
        const indexes = whole.flatMap((s) => [s.Resource].flat()).filter((r) => JSON.stringify(r).includes('/index/*'));
        const indexed = brokerTables.filter((d) => (d.globalIndexes ?? []).length > 0).map((d) => d.id);
        expect(new Set(indexes.map(tableOf))).toEqual(new Set(want.readWrite.filter((t) => indexed.includes(t))));
        const items = dynamo.filter((s) => conditionOf(s)).map((s) => {
          expect(s.Resource).toEqual(tableArn('Security'));
          const condition = conditionOf(s)!;
          expect(Object.keys(condition)).toEqual(['ForAllValues:StringLike']);
          return `${actions(s).join(',')} on ${condition['ForAllValues:StringLike']!['dynamodb:LeadingKeys']!.join(',')}`;
        });
        expect(items.sort()).toEqual([...want.security].sort());
      });
    }

    it('no function may write a user or read the Security table but item by item: password hashes are read one user at a time, by the functions that authenticate', () => {
      for (const fn of Object.values(functionsById)) {
        const onSecurity = statementsOf(template, id(fn.role!)).filter((s) => JSON.stringify(s.Resource).includes(id(stack.tables.table('Security'))));
        for (const s of onSecurity) {
          expect(conditionOf(s)).toBeDefined();
          if (JSON.stringify(conditionOf(s)).includes('user#')) expect(actions(s)).toEqual(['dynamodb:GetItem']);
        }
      }
    });
  });

  it('the delivery secret is readable by the functions that deliver and the listener tasks (at start, through the execution role), by no one else', () => {
    const secret = id(stack.deliverySecret);
    const readers = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p) => (p.Properties.PolicyDocument.Statement as Statement[]).some((s) => actions(s).some((a) => a.startsWith('secretsmanager:'))))
      .flatMap((p) => (p.Properties.Roles as Array<{ Ref: string }>).map((r) => r.Ref));
    const deliverers = [...Object.values(deliveringFunctions), stack.sweeper];
    expect(readers.sort()).toEqual([...deliverers.map((fn) => id(fn.role!)), id(stack.deviceListener.taskDefinition.obtainExecutionRole())].sort());
    for (const role of readers) {
      const statements = statementsOf(template, role).filter((s) => actions(s).some((a) => a.startsWith('secretsmanager:')));
      expect(statements).toEqual([{ Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], Effect: 'Allow', Resource: { Ref: secret } }]);
    }
    const functions = template.findResources('AWS::Lambda::Function');
    for (const fn of deliverers) expect(functions[id(fn)]!.Properties.Environment.Variables.DELIVERY_SECRET_ARN).toEqual({ Ref: secret });
    expect(functions[id(wsConnect)]!.Properties.Environment.Variables.DELIVERY_SECRET_ARN).toBeUndefined();
    const [container] = Object.values(template.findResources('AWS::ECS::TaskDefinition'))[0]!.Properties.ContainerDefinitions as Array<Record<string, unknown>>;
    expect(container!.Secrets).toEqual([{ Name: 'DELIVERY_SECRET', ValueFrom: { Ref: secret } }]);
  });

  it('$connect runs outside the VPC, and its only permissions are on the Security table (above)', () => {
    expect(template.findResources('AWS::Lambda::Function')[id(wsConnect)]!.Properties.VpcConfig).toBeUndefined();
    expect(statementsOf(template, id(wsConnect.role!)).filter((s) => !actions(s).every((a) => a.startsWith('dynamodb:')))).toEqual([]);
  });

  it('API Gateway may invoke exactly the three route handlers, from this API only; the schedule only the sweeper (HTTP publish: http-door.test.ts)', () => {
    const httpApi = JSON.stringify({ Ref: id(stack.httpDoor.api) });
    const all = Object.values(template.findResources('AWS::Lambda::Permission'))
      .map((p) => p.Properties)
      .filter((p) => !JSON.stringify(p.SourceArn).includes(httpApi));
    const scheduled = all.filter((p) => p.Principal === 'events.amazonaws.com');
    expect(scheduled.map((p) => p.FunctionName)).toEqual([{ 'Fn::GetAtt': [id(stack.sweeper), 'Arn'] }]);
    const permissions = all.filter((p) => p.Principal !== 'events.amazonaws.com');
    expect(permissions.map((p) => p.FunctionName).sort(byJson)).toEqual(
      [wsConnect, wsDefault, wsDisconnect].map((fn) => ({ 'Fn::GetAtt': [id(fn), 'Arn'] })).sort(byJson),
    );
    for (const p of permissions) {
      expect(p.Principal).toBe('apigateway.amazonaws.com');
      expect(JSON.stringify(p.SourceArn)).toContain(JSON.stringify({ Ref: id(stack.browserDoor.api) }));
    }
  });
});

/** A security group's rules in one shape, whether CloudFormation has them inline or as separate resources. */
function rules(t: Template, sgLogicalId: string, direction: 'Ingress' | 'Egress'): Array<{ port: number; peer: unknown }> {
  const peerKey = direction === 'Ingress' ? 'SourceSecurityGroupId' : 'DestinationSecurityGroupId';
  const inline = (t.findResources('AWS::EC2::SecurityGroup')[sgLogicalId]!.Properties[`SecurityGroup${direction}`] ?? []) as Array<Record<string, unknown>>;
  const separate = Object.values(t.findResources(`AWS::EC2::SecurityGroup${direction}`))
    .map((r) => r.Properties as Record<string, unknown>)
    .filter((r) => JSON.stringify(r.GroupId) === JSON.stringify({ 'Fn::GetAtt': [sgLogicalId, 'GroupId'] }));
  return [...inline, ...separate]
    .filter((r) => r.CidrIp !== '255.255.255.255/32') // CDK's placeholder for "no egress"
    .map((r) => {
      expect(r.IpProtocol).toBe('tcp');
      expect(r.FromPort).toBe(r.ToPort);
      return { port: r.FromPort as number, peer: r.CidrIp ?? r[peerKey] };
    })
    .sort(byJson);
}

describe('security groups', () => {
  const listenerTasks = id(stack.deviceListener.securityGroup);
  const loadBalancer = id(stack.deviceListener.loadBalancerSecurityGroup);
  const deliveryClients = stack.network.deliveryClients;

  it('the listener tasks admit MQTT from the load balancer, and the delivery port from the broker Lambdas, nothing else', () => {
    expect(rules(template, listenerTasks, 'Ingress')).toEqual(
      [
        { port: 1883, peer: groupId(stack.deviceListener.loadBalancerSecurityGroup) },
        { port: 8083, peer: groupId(stack.deviceListener.loadBalancerSecurityGroup) },
        { port: 8090, peer: groupId(deliveryClients) },
      ].sort(byJson),
    );
  });

  it('the listener tasks go out on HTTPS only (Lambda Invoke, ECR, logs)', () => {
    expect(rules(template, listenerTasks, 'Egress')).toEqual([{ port: 443, peer: '0.0.0.0/0' }]);
  });

  it('the load balancer admits the TLS ports from anywhere and reaches only the listener ports of the tasks', () => {
    expect(rules(template, loadBalancer, 'Ingress')).toEqual([{ port: 443, peer: '0.0.0.0/0' }, { port: 8883, peer: '0.0.0.0/0' }].sort(byJson));
    expect(rules(template, loadBalancer, 'Egress')).toEqual(
      [
        { port: 1883, peer: groupId(stack.deviceListener.securityGroup) },
        { port: 8083, peer: groupId(stack.deviceListener.securityGroup) },
      ].sort(byJson),
    );
  });

  it('with plainMqtt, the load balancer also admits 1883', () => {
    const plain = synthBroker({ plainMqtt: 'true' });
    const ports = rules(plain.template, logicalId(plain, plain.stack.deviceListener.loadBalancerSecurityGroup), 'Ingress').map((r) => r.port);
    expect(ports.sort()).toEqual([1883, 443, 8883].sort());
  });

  it('the delivering Lambdas run in the private subnets in that group, which admits nothing and reaches HTTPS and the delivery port only', () => {
    expect(rules(template, id(deliveryClients), 'Ingress')).toEqual([]);
    expect(rules(template, id(deliveryClients), 'Egress')).toEqual(
      [
        { port: 443, peer: '0.0.0.0/0' },
        { port: 8090, peer: groupId(stack.deviceListener.securityGroup) },
      ].sort(byJson),
    );
    for (const fn of Object.values(deliveringFunctions)) {
      const vpc = template.findResources('AWS::Lambda::Function')[id(fn)]!.Properties.VpcConfig;
      expect(vpc.SecurityGroupIds).toEqual([groupId(deliveryClients)]);
      expect(vpc.SubnetIds).toEqual(stack.network.vpc.privateSubnets.map((subnet) => stack.resolve(subnet.subnetId)));
    }
  });
});

describe('network', () => {
  it('has one NAT gateway by default, and gateway endpoints for DynamoDB and S3 on the private route tables', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 1);
    for (const service of ['dynamodb', 's3']) {
      template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
        VpcEndpointType: 'Gateway',
        ServiceName: { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, `.${service}`]] },
      });
    }
  });

  it('logs rejected flows', () => {
    template.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'REJECT', ResourceType: 'VPC' });
  });
});

function byJson(a: unknown, b: unknown): number {
  return JSON.stringify(a).localeCompare(JSON.stringify(b));
}

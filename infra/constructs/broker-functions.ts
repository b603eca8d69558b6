import { fileURLToPath } from 'node:url';
import { Duration, Validations, type RemovalPolicy } from 'aws-cdk-lib';
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IGrantable } from 'aws-cdk-lib/aws-iam';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { BrokerNetwork } from './broker-network';
import { brokerMetricsEnvironment } from './broker-metrics';
import type { BrokerTables, SecurityUse } from './broker-tables';
import { attachRules, rulesBundling } from './broker-rules';
import type { RulesContext } from '../rules-context';

/** The repository root: entry points are named relative to it, and esbuild bundles from it. */
export const repositoryRoot = fileURLToPath(new URL('../..', import.meta.url));

/** The `@connections` API of the API Gateway door, as the functions need it. */
export interface ConnectionsManagement {
  readonly managementEndpoint: string;
  grantManageConnections(grantee: IGrantable): void;
}

export interface BrokerFunctionsProps {
  readonly network: BrokerNetwork;
  readonly tables: BrokerTables;
  readonly connections: ConnectionsManagement;
  /** Signs the requests to the listener tasks' delivery endpoint (shared/gateway/delivery-signature.ts). */
  readonly deliverySecret: ISecret;
  readonly logRetention: RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  readonly logLevel: string;
  /** The broker's settings from the context (infra/broker-settings.ts), for every broker function. */
  readonly brokerEnvironment?: Readonly<Record<string, string>>;
  /** The operator's rules (infra/rules-context.ts), for the functions that route messages. */
  readonly rules?: RulesContext;
}

export interface BrokerFunctionOptions {
  /** The entry point, relative to the repository root, e.g. `functions/packets.ts`. */
  readonly entry: string;
  readonly description: string;
  /**
   * A handler of broker state (default): it gets the table names, read/write access to the
   * broker's state (Connections, Sessions, Subscriptions, Retained), the `@connections` endpoint
   * and the right to use it, the delivery secret (read, fetched at its first delivery to a
   * device), and a place in the VPC with the security group the listener's delivery port admits.
   * False for a function that needs none of it.
   */
  readonly broker?: boolean;
  /** The API Gateway door's inbox, read and written (a broker function only). */
  readonly inbox?: boolean;
  /** What it may do with the Security table's items; nothing when absent. */
  readonly security?: readonly SecurityUse[];
  readonly timeout?: Duration;
  readonly memorySize?: number;
  /** It routes messages (PUBLISHes, wills): the rules are bundled with it, and it may reach their targets (constructs/broker-rules.ts). */
  readonly routes?: boolean;
}

/**
 * Builds the broker's Lambdas alike: esbuild bundles (locally, no Docker) for Node 24 on arm64
 * with source maps, a log group with the stack's retention, the shared environment and grants.
 * Adding a function is one call: `functions.add('Sweeper', { entry: 'functions/sweeper.ts', ... })`.
 */
export class BrokerFunctions extends Construct {
  private readonly functions: NodejsFunction[] = [];

  constructor(
    scope: Construct,
    id: string,
    private readonly props: BrokerFunctionsProps,
  ) {
    super(scope, id);
  }

  /** Every function added so far, for alarms and the dashboard. */
  get all(): readonly NodejsFunction[] {
    return this.functions;
  }

  add(id: string, options: BrokerFunctionOptions): NodejsFunction {
    const { network, tables, connections, deliverySecret } = this.props;
    const broker = options.broker ?? true;
    const rules = options.routes ? this.props.rules : undefined;
    const fn = new NodejsFunction(this, id, {
      entry: `${repositoryRoot}${options.entry}`,
      handler: 'handler',
      description: options.description,
      projectRoot: repositoryRoot,
      depsLockFilePath: `${repositoryRoot}package-lock.json`,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: options.memorySize ?? 512,
      timeout: options.timeout ?? Duration.seconds(30),
      logGroup: new LogGroup(this, `${id}Logs`, { retention: this.props.logRetention, removalPolicy: this.props.removalPolicy }),
      environment: {
        LOG_LEVEL: this.props.logLevel,
        NODE_OPTIONS: '--enable-source-maps',
        ...(broker
          ? {
              ...tables.environment(),
              APIGW_MANAGEMENT_ENDPOINT: connections.managementEndpoint,
              DELIVERY_SECRET_ARN: deliverySecret.secretArn,
              ...this.props.brokerEnvironment,
            }
          : {}),
        // Each flush of the broker's counters printed as an EMF line (infra/constructs/broker-metrics.ts).
        ...(broker ? brokerMetricsEnvironment(this) : {}),
      },
      ...(broker ? { vpc: network.vpc, vpcSubnets: network.privateSubnets, securityGroups: [network.deliveryClients] } : {}),
      bundling: {
        format: OutputFormat.ESM,
        mainFields: ['module', 'main'],
        // The SDK is bundled: the versions the tests ran are the versions that run.
        bundleAwsSDK: true,
        minify: true,
        sourceMap: true,
        // CommonJS dependencies inside an ES module bundle still call require() for Node built-ins.
        banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
        ...(rules ? { commandHooks: rulesBundling(rules) } : {}),
      },
    });
    if (rules) attachRules(fn, rules);
    tables.grantSecurity(fn, options.security ?? []);
    if (broker) {
      tables.grantState(fn);
      if (options.inbox) tables.grantInbox(fn);
      connections.grantManageConnections(fn);
      deliverySecret.grantRead(fn);
      for (const id of tables.indexGrantFindings()) {
        Validations.of(fn).acknowledge({
          id,
          reason: "The table's own secondary indexes (the sweeper's timer index); an index ARN has no other form than <table>/index/<name>",
        });
      }
    }
    acknowledgeLambdaRole(fn, broker);
    this.functions.push(fn);
    return fn;
  }
}

function acknowledgeLambdaRole(fn: NodejsFunction, inVpc: boolean): void {
  Validations.of(fn).acknowledge({
    id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    reason: "AWS's managed policy for writing the function's own CloudWatch logs; nothing else",
  });
  if (inVpc) {
    Validations.of(fn).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
      reason: 'Lambda needs these network-interface permissions to place the function in the VPC, next to the listener tasks it delivers to',
    });
  }
}

// Architecture checks, not style: the layering of shared/ (protocol <- broker <- adapters) and the
// AWS SDK clients each part may use. `npm run lint` runs it on shared/ and web/, the code these
// rules are about (functions/, local/, bench/, test/ and infra/ may import anything), then dpdm for
// import cycles in shared/: import-x/no-cycle skips type-only imports, and a cycle of types ties
// modules together as much as one of values.
import tsParser from '@typescript-eslint/parser';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import { importX } from 'eslint-plugin-import-x';

const noLambdaTypes = { group: ['aws-lambda', '@types/aws-lambda'], message: 'shared/ imports no Lambda event types: functions/ translates them' };
const noCdk = { group: ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs'], message: 'CDK belongs to infra/' };

/** The packages a folder must not import: AWS, except the SDK clients this folder is the adapter for. */
const awsExcept = (...clients) => [
  {
    group: ['@aws-sdk/*', ...clients.map((client) => `!${client}`)],
    message:
      clients.length === 0
        ? 'only the adapters talk to AWS: the core (protocol, broker, security) through the ports they implement, web/ not at all'
        : `this adapter uses only ${clients.join(' and ')} of the AWS SDK (DynamoDB is shared/store's, @connections shared/gateway's, Lambda Invoke shared/listener's)`,
  },
  noLambdaTypes,
  noCdk,
];

/** A folder of shared/ that must not reach the others (paths as resolved, whatever the import says). */
const zone = (target, from, message) => ({ target: `./shared/${target}`, from: from.map((dir) => `./shared/${dir}`), message });

const noIo = {
  group: ['node:fs', 'node:fs/*', 'fs', 'fs/*', 'node:net', 'net', 'node:tls', 'tls', 'node:http', 'http', 'node:https', 'https', 'node:dgram', 'dgram', 'node:child_process', 'child_process', 'node:worker_threads', 'worker_threads', 'ws'],
  message: 'shared/protocol is pure: no I/O',
};

export default [
  { ignores: ['node_modules/', 'cdk.out/', 'dist/'] },
  {
    files: ['shared/**/*.ts', 'web/**/*.ts'],
    languageOptions: { parser: tsParser, ecmaVersion: 'latest', sourceType: 'module' },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: ['./tsconfig.json', './web/tsconfig.json'], noWarnOnMultipleProjects: true })],
    },
    rules: {
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            zone('protocol', ['broker', 'security', 'store', 'gateway', 'listener'], 'shared/protocol is pure (codec, topics, reason codes): it imports no other part of shared/'),
            zone('broker', ['store', 'gateway', 'listener'], 'shared/broker reaches state and connections only through its ports (shared/broker/ports.ts), which the adapters implement'),
            zone('security', ['store', 'gateway', 'listener'], 'shared/security is core: it reaches state through the broker ports, not an adapter'),
            zone('rules', ['broker', 'store', 'gateway', 'listener', 'rule-targets'], 'shared/rules is the rules engine: it reaches targets through its port (target-port.ts), which shared/rule-targets implements'),
            zone('broker', ['rule-targets'], 'shared/broker reaches rule targets only through shared/rules'),
          ],
        },
      ],
    },
  },
  { files: ['shared/broker/**/*.ts', 'shared/security/**/*.ts', 'shared/rules/**/*.ts', 'web/**/*.ts'], rules: { 'no-restricted-imports': ['error', { patterns: awsExcept() }] } },
  { files: ['shared/store/**/*.ts'], rules: { 'no-restricted-imports': ['error', { patterns: awsExcept('@aws-sdk/client-dynamodb', '@aws-sdk/lib-dynamodb') }] } },
  { files: ['shared/gateway/**/*.ts'], rules: { 'no-restricted-imports': ['error', { patterns: awsExcept('@aws-sdk/client-apigatewaymanagementapi') }] } },
  {
    files: ['shared/rule-targets/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: awsExcept('@aws-sdk/client-lambda', '@aws-sdk/client-sqs', '@aws-sdk/client-kinesis', '@aws-sdk/client-eventbridge') }] },
  },
  { files: ['shared/listener/**/*.ts'], rules: { 'no-restricted-imports': ['error', { patterns: awsExcept('@aws-sdk/client-lambda') }] } },
  {
    files: ['shared/protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [...awsExcept(), noIo] }],
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'shared/protocol reads no configuration: it is passed in' }],
    },
  },
];

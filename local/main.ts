/**
 * `npm start`: the broker on this machine. Ports and DynamoDB come from flags or the
 * environment: --mqtt-port / MQTT_PORT (1883), --ws-port / MQTT_WS_PORT (8083),
 * --apigw-port / APIGW_WS_PORT (3001), --console-port / CONSOLE_PORT (8080),
 * --http-port / HTTP_PORT (8082: HTTP publish and server-sent events, docs/http.md),
 * --dynamodb-port / DYNAMODB_PORT (8000),
 * --dynamodb-endpoint / DYNAMODB_ENDPOINT (use a running DynamoDB; none is started),
 * --log-level / LOG_LEVEL (info).
 * Security: --tls / MQTT_TLS_PORT (mqtts on 8883 with a certificate made at start, or
 * MQTT_TLS_CERT + MQTT_TLS_KEY files; with it MQTT over secure WebSocket on --wss-port /
 * MQTT_WSS_PORT, 8081; device certificates required on mqtts with MQTT_TLS_CLIENT_CA, and
 * MQTT_TLS_CRL, MQTT_TLS_IDENTITY: functions/listener/tls-settings.ts), --no-anonymous / MQTT_ALLOW_ANONYMOUS=false,
 * --acl-file / MQTT_ACL_FILE, and the MQTT_JWT_* and limit variables of functions/security-config.ts.
 * Rules (docs/rules.md): --rules FILE / MQTT_RULES_FILE.
 * AWS's quotas, enforced and printed: AWS_LIMITS_SCALE, LAMBDA_CONCURRENCY (local/aws-limits.ts).
 * The listener: the variables of functions/listener/listener-settings.ts (outbound buffer, CONNECT
 * size, connections per task and per address, MQTT_PROXY_PROTOCOL), with the cloud's defaults.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { listenerSettingsFromEnv, type ListenerSettings } from '../functions/listener/listener-settings';
import { tlsSettingsFromEnv } from '../functions/listener/tls-settings';
import type { ClientCertificateOptions } from '../shared/listener/client-certificate';
import { ConfigurationError, describeSecurity, limitsFromEnv, securityPolicyFromEnv } from '../functions/security-config';
import type { LogLevel } from '../shared/util/logger';
import { defaultListenerLimits } from '../shared/listener/listener';
import { awsLimitSettingsFromEnv, describeAwsLimits, type AwsLimitSettings } from './aws-limits';
import { startHarness } from './harness';
import { readRulesFile } from '../functions/rules-config';
import type { RuleConfig } from '../shared/rules/rule-config';

const { values: flags } = parseArgs({
  options: {
    'mqtt-port': { type: 'string' },
    'ws-port': { type: 'string' },
    'apigw-port': { type: 'string' },
    'console-port': { type: 'string' },
    'http-port': { type: 'string' },
    'dynamodb-port': { type: 'string' },
    'dynamodb-endpoint': { type: 'string' },
    'log-level': { type: 'string' },
    host: { type: 'string' },
    tls: { type: 'boolean' },
    'tls-port': { type: 'string' },
    'wss-port': { type: 'string' },
    'no-anonymous': { type: 'boolean' },
    'acl-file': { type: 'string' },
    rules: { type: 'string' },
  },
});

function port(flag: string | undefined, env: string | undefined, fallback: number, name: string): number {
  const raw = flag ?? env;
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65535) fail(`${name} must be a port number, got "${raw}"`);
  return value;
}

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

const env = process.env;
let security;
let config;
let listenerSettings: ListenerSettings = { limits: {}, proxyProtocol: false };
let tls: { port: number; wssPort: number; cert?: string; key?: string; clientCertificates?: ClientCertificateOptions } | undefined;
let awsLimits: AwsLimitSettings = {};
let rulesFile: string | undefined;
let rules: RuleConfig[] | undefined;
try {
  rulesFile = flags.rules ?? (env.MQTT_RULES_FILE || undefined);
  rules = rulesFile === undefined ? undefined : readRulesFile(rulesFile);
  awsLimits = awsLimitSettingsFromEnv(env);
  security = securityPolicyFromEnv(
    {
      ...env,
      ...(flags['no-anonymous'] ? { MQTT_ALLOW_ANONYMOUS: 'false' } : {}),
      ...(flags['acl-file'] ? { MQTT_ACL_FILE: flags['acl-file'] } : {}),
    },
    { allowAnonymous: true },
  );
  config = limitsFromEnv(env);
  listenerSettings = listenerSettingsFromEnv(env);
  const tlsSettings = tlsSettingsFromEnv(env);
  if (flags.tls || flags['tls-port'] || env.MQTT_TLS_PORT) {
    tls = {
      port: port(flags['tls-port'], env.MQTT_TLS_PORT, 8883, 'MQTT_TLS_PORT'),
      wssPort: port(flags['wss-port'], env.MQTT_WSS_PORT, 8081, 'MQTT_WSS_PORT'),
      ...tlsSettings.server,
      ...(tlsSettings.clientCertificates ? { clientCertificates: tlsSettings.clientCertificates } : {}),
    };
  } else if (tlsSettings.clientCertificates) {
    throw new ConfigurationError('MQTT_TLS_CLIENT_CA needs the TLS port: add --tls (or MQTT_TLS_PORT)');
  }
} catch (error) {
  fail(error instanceof ConfigurationError ? error.message : String(error));
}
let caFile: string | undefined;
try {
  const harness = await startHarness({
    host: flags.host ?? env.HOST ?? '127.0.0.1',
    mqttPort: port(flags['mqtt-port'], env.MQTT_PORT, 1883, 'MQTT_PORT'),
    wsPort: port(flags['ws-port'], env.MQTT_WS_PORT, 8083, 'MQTT_WS_PORT'),
    apigwPort: port(flags['apigw-port'], env.APIGW_WS_PORT, 3001, 'APIGW_WS_PORT'),
    consolePort: port(flags['console-port'], env.CONSOLE_PORT, 8080, 'CONSOLE_PORT'),
    // Not 8081: MQTT over secure WebSocket takes it with --tls.
    httpPort: port(flags['http-port'], env.HTTP_PORT, 8082, 'HTTP_PORT'),
    dynamoDbPort: port(flags['dynamodb-port'], env.DYNAMODB_PORT, 8000, 'DYNAMODB_PORT'),
    ...((flags['dynamodb-endpoint'] ?? env.DYNAMODB_ENDPOINT) ? { dynamoDbEndpoint: flags['dynamodb-endpoint'] ?? env.DYNAMODB_ENDPOINT } : {}),
    tablePrefix: env.TABLE_PREFIX ?? 'mqtt-local',
    logLevel: (flags['log-level'] ?? env.LOG_LEVEL ?? 'info') as LogLevel,
    security,
    config,
    // As in the cloud, clients are capped per address unless MQTT_MAX_CONNECTIONS_PER_ADDRESS says otherwise.
    listener: {
      maxConnectionsPerAddress: defaultListenerLimits.maxConnectionsPerAddress,
      ...listenerSettings.limits,
      proxyProtocol: listenerSettings.proxyProtocol,
    },
    ...(tls ? { tls } : {}),
    awsLimits,
    ...(rules && rulesFile ? { rules: { rules, baseDir: path.dirname(path.resolve(rulesFile)) } } : {}),
  });
  if (harness.tlsCertificate && !tls?.cert) {
    caFile = path.join(mkdtempSync(path.join(tmpdir(), 'serverless-mqtt-tls-')), 'ca.pem');
    writeFileSync(caFile, harness.tlsCertificate);
  }
  // Ready to stop before saying it is running: whoever reads the lines below may press Ctrl-C at once.
  let stopping = false;
  const shutdown = (): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('stopping...\n');
    if (caFile) rmSync(path.dirname(caFile), { recursive: true, force: true });
    void harness.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  process.stdout.write(
    [
      'Serverless MQTT broker running locally:',
      `  MQTT (TCP)                  ${harness.mqttUrl}`,
      ...(harness.mqttsUrl ? [`  MQTT over TLS               ${harness.mqttsUrl}   (${caFile ? `self-signed; trust it with --cafile ${caFile}` : 'your certificate'})`] : []),
      ...(tls?.clientCertificates ? [`                              devices present a certificate from MQTT_TLS_CLIENT_CA; its ${tls.clientCertificates.identity} is the user name`] : []),
      `  MQTT over WebSocket         ${harness.wsUrl}`,
      ...(harness.wssUrl ? [`  MQTT over secure WebSocket  ${harness.wssUrl}   (the same certificate)`] : []),
      `  API Gateway WebSocket       ${harness.apigwUrl}   (@connections on the same port)`,
      `  HTTP publish                ${harness.httpUrl}/topics/{topic}?qos=1   (POST; docs/http.md)`,
      `  server-sent events          ${harness.httpUrl}/events?filter={filter}   (also on the WebSocket port, as in the cloud)`,
      `  listener delivery endpoint  ${harness.deliveryEndpoint}/@connections/{id}`,
      `  web console                 ${harness.consoleUrl}   (browser adapter: ${harness.consoleUrl}/adapter.js)`,
      `  DynamoDB                    ${harness.dynamoDbEndpoint}   tables: ${Object.values(harness.tables).join(', ')}`,
      `  security                    ${describeSecurity(security)}`,
      '  users                       npm run users -- add <name> --password <password>   (see docs/security.md)',
      `  AWS limits                  ${describeAwsLimits(harness.awsLimits).join('\n                              ')}`,
      ...(rules ? [`  rules                       ${rules.length} from ${rulesFile}: ${rules.map((rule) => `${rule.filter} -> ${rule.target.type}`).join(', ')}`] : []),
      'Try: mosquitto_sub -h localhost -t "demo/#" -v   and   mosquitto_pub -h localhost -t demo/hello -m hi',
      `     curl -X POST --data-binary hi '${harness.httpUrl}/topics/demo/hello?qos=1'   and   curl -N '${harness.httpUrl}/events?filter=demo/%23'`,
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
} catch (error) {
  fail(withPortHint(error instanceof Error ? error.message : String(error)));
}

/** The listener names the port it could not bind; the user sets it by this variable or flag. */
function withPortHint(message: string): string {
  const hints: Array<[string, string]> = [
    ['MQTT over WebSocket port', 'MQTT_WS_PORT or --ws-port'],
    ['MQTT port', 'MQTT_PORT or --mqtt-port'],
    ['MQTT over TLS port', 'MQTT_TLS_PORT or --tls-port'],
    ['MQTT over secure WebSocket port', 'MQTT_WSS_PORT or --wss-port'],
    ['API Gateway emulator port', 'APIGW_WS_PORT or --apigw-port'],
    ['web console port', 'CONSOLE_PORT or --console-port'],
    ['HTTP port', 'HTTP_PORT or --http-port'],
  ];
  const hint = hints.find(([prefix]) => message.startsWith(prefix));
  return hint ? `${message} (${hint[1]})` : message;
}

/**
 * Device certificates (mutual TLS) as a deploy option, from CDK context. The NLB does not
 * terminate TLS on 8883 then: a TCP listener passes the bytes through (after a PROXY protocol v2
 * header) to the listener tasks, which verify the device's certificate themselves and take its
 * identity as the user name (shared/listener/tls-door.ts). The tasks need the server certificate
 * and key for that, from a Secrets Manager secret the operator names; the CA and the CRL are
 * public, read from files at synthesis into the container's environment.
 *
 *   deviceCaFile         a PEM file: the CA device certificates must chain to (turns the option on)
 *   deviceCrlFile        a PEM file: its certificate revocation lists (optional)
 *   deviceIdentity       cn (default), san-dns or san-email: the field that is the user name
 *   serverTlsSecretArn   the complete ARN of a Secrets Manager secret (ECS takes no other form)
 *                        holding JSON {"cert": "<PEM chain>", "key": "<PEM private key>"} for the
 *                        devices' host name
 *
 * Synthesis checks the files and the field with the listener's own reader
 * (functions/listener/tls-settings.ts); a mistake stops it with one line naming the context key.
 */
import { readFileSync } from 'node:fs';
import type { Node } from 'constructs';
import { tlsSettingsFromEnv } from '../functions/listener/tls-settings';
import { ConfigurationError } from '../functions/security-config';
import { DeployContextError } from './deploy-context';

export interface MutualTlsContext {
  /** The listener container's settings: MQTT_TLS_PORT, MQTT_TLS_CLIENT_CA, and MQTT_TLS_CRL and MQTT_TLS_IDENTITY when given. */
  readonly environment: Readonly<Record<string, string>>;
  /** The complete ARN of the secret with the server certificate and key (JSON fields `cert` and `key`). */
  readonly serverSecretArn: string;
}

/** The port the listener terminates device TLS on, and the NLB passes 8883 through to. */
export const LISTENER_TLS_PORT = 8883;

const KEYS = { deviceCaFile: 'MQTT_TLS_CLIENT_CA', deviceCrlFile: 'MQTT_TLS_CRL', deviceIdentity: 'MQTT_TLS_IDENTITY' } as const;
const SECRET_HELP =
  'serverTlsSecretArn (the complete ARN of a Secrets Manager secret holding {"cert": "<PEM chain>", "key": "<PEM private key>"} for the devices\' host name: the listener tasks terminate TLS when devices present certificates)';
/** A secret's complete ARN ends in a hyphen and six characters Secrets Manager added to the name. */
const COMPLETE_SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/;

export function readMutualTlsContext(node: Node): MutualTlsContext | undefined {
  const get = (key: string): string | undefined => {
    const value: unknown = node.tryGetContext(key);
    if (value === undefined || value === '') return undefined;
    if (typeof value !== 'string') throw new DeployContextError(`context ${key} must be a string, got ${JSON.stringify(value)}`);
    return value;
  };
  const caFile = get('deviceCaFile');
  const given = [...Object.keys(KEYS), 'serverTlsSecretArn'].filter((key) => get(key) !== undefined);
  if (caFile === undefined) {
    if (given.length > 0) throw new DeployContextError(`context ${given[0]} needs deviceCaFile (a PEM file: the CA whose device certificates the broker accepts)`);
    return undefined;
  }
  const serverSecretArn = get('serverTlsSecretArn');
  if (serverSecretArn === undefined) throw new DeployContextError(`context deviceCaFile needs ${SECRET_HELP}`);
  if (!COMPLETE_SECRET_ARN.test(serverSecretArn)) {
    throw new DeployContextError(`context serverTlsSecretArn must be a secret's complete ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>), got ${JSON.stringify(serverSecretArn)}`);
  }
  const crlFile = get('deviceCrlFile');
  const identity = get('deviceIdentity');
  const environment: Record<string, string> = {
    MQTT_TLS_PORT: String(LISTENER_TLS_PORT),
    MQTT_TLS_CLIENT_CA: readPem(caFile, 'deviceCaFile'),
    ...(crlFile !== undefined ? { MQTT_TLS_CRL: readPem(crlFile, 'deviceCrlFile') } : {}),
    ...(identity !== undefined ? { MQTT_TLS_IDENTITY: identity } : {}),
  };
  try {
    tlsSettingsFromEnv(environment);
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    let message = error.message;
    for (const [key, envVar] of Object.entries(KEYS)) message = message.replaceAll(envVar, `context ${key}`);
    throw new DeployContextError(message);
  }
  return { environment, serverSecretArn };
}

function readPem(file: string, key: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new DeployContextError(`context ${key}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)}); pass the path of a PEM file`);
  }
  if (!text.includes('-----BEGIN ')) throw new DeployContextError(`context ${key}: ${file} is not a PEM file`);
  return text;
}

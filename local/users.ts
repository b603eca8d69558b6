/**
 * `npm run users -- add|remove|list`: the users who may connect with a password, kept in the
 * Security table (scrypt hashes, never passwords) with their own ACL rules.
 *
 *   npm run users -- add alice --password s3cret [--acl "readwrite devices/alice/#"]...
 *   echo s3cret | npm run users -- add alice --password-stdin
 *   npm run users -- remove alice
 *   npm run users -- list
 *
 * Where: the table of `npm start` by default (DynamoDB Local on DYNAMODB_ENDPOINT or
 * http://127.0.0.1:DYNAMODB_PORT, table `<TABLE_PREFIX>-Security`, prefix mqtt-local); or a
 * deployed stack's table when SECURITY_TABLE names it (AWS credentials and region from the
 * usual environment). --dynamodb-endpoint and --table override both.
 */
import { DynamoDBClient, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { parseArgs } from 'node:util';
import { AclSyntaxError, parseAclRule } from '../shared/security/acl';
import { MAX_USERNAME_BYTES } from '../shared/security/broker-security';
import { hashPassword } from '../shared/security/password';
import { DynamoSecurityStore } from '../shared/store/dynamo-security';
import { localTableNames } from '../shared/store/tables';
import { localCredentials, LOCAL_REGION } from './local-aws';

const USAGE = 'usage: npm run users -- add <name> (--password <password> | --password-stdin) [--acl "<rule>"]... | remove <name> | list';

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

const { values: flags, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        password: { type: 'string' },
        'password-stdin': { type: 'boolean' },
        acl: { type: 'string', multiple: true },
        'dynamodb-endpoint': { type: 'string' },
        table: { type: 'string' },
      },
    });
  } catch (error) {
    return fail(`${(error as Error).message}\n${USAGE}`);
  }
})();

const env = process.env;
const [command, name] = positionals;
const cloud = !flags['dynamodb-endpoint'] && !env.DYNAMODB_ENDPOINT && Boolean(env.SECURITY_TABLE);
const endpoint = cloud ? undefined : (flags['dynamodb-endpoint'] ?? env.DYNAMODB_ENDPOINT ?? `http://127.0.0.1:${env.DYNAMODB_PORT ?? 8000}`);
const table = flags.table ?? env.SECURITY_TABLE ?? localTableNames(env.TABLE_PREFIX ?? 'mqtt-local').security;
const client = new DynamoDBClient(endpoint ? { endpoint, region: LOCAL_REGION, credentials: localCredentials } : {});
const store = new DynamoSecurityStore({ client: DynamoDBDocumentClient.from(client), table });
const where = endpoint ? `${table} at ${endpoint}` : `${table} (AWS)`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function add(username: string): Promise<void> {
  if (Buffer.byteLength(username) > MAX_USERNAME_BYTES) fail(`a user name has at most ${MAX_USERNAME_BYTES} bytes`);
  const password = flags['password-stdin'] ? await readStdin() : flags.password;
  if (!password) fail(`give the password with --password or --password-stdin\n${USAGE}`);
  const acl = flags.acl ?? [];
  for (const rule of acl) {
    try {
      parseAclRule(rule);
    } catch (error) {
      fail(error instanceof AclSyntaxError ? error.message : String(error));
    }
  }
  await store.putUser({ username, passwordHash: await hashPassword(password), ...(acl.length > 0 ? { acl } : {}) });
  process.stdout.write(`user ${username} saved in ${where}${acl.length > 0 ? ` with ${acl.length} ACL rule(s)` : ''}\n`);
}

try {
  switch (command) {
    case 'add':
      if (!name) fail(USAGE);
      await add(name);
      break;
    case 'remove':
      if (!name) fail(USAGE);
      if (!(await store.deleteUser(name))) fail(`no user ${name} in ${where}`);
      process.stdout.write(`user ${name} removed from ${where}\n`);
      break;
    case 'list':
      for (const user of await store.listUsers()) process.stdout.write(`${user.username}${user.acl ? `\t${user.acl.join('; ')}` : ''}\n`);
      break;
    default:
      fail(USAGE);
  }
} catch (error) {
  if (error instanceof ResourceNotFoundException) fail(`no table ${where}: start the broker (npm start) first, or set SECURITY_TABLE to a deployed stack's table`);
  const code = (error as NodeJS.ErrnoException).code ?? (error as { cause?: { code?: string } }).cause?.code;
  if (code === 'ECONNREFUSED') fail(`nothing answers at ${endpoint}: start the broker (npm start) first, or set DYNAMODB_ENDPOINT`);
  fail(String(error));
} finally {
  client.destroy();
}

import { createWsConnectHandler } from './handlers';
import { securityDepsFromEnv } from './runtime';

// `$connect` agrees the subprotocol and checks a `?token=` (remembered in the Security table).
export const handler = createWsConnectHandler(securityDepsFromEnv(process.env));

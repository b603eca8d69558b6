import { createWsConnectHandler } from './handlers';
import { brokerDepsFromEnv } from './runtime';

// `$connect` agrees the subprotocol and checks a `?token=` (remembered in the Security table).
export const handler = createWsConnectHandler(brokerDepsFromEnv(process.env));

import { createWsDisconnectHandler } from './handlers';
import { brokerDepsFromEnv } from './runtime';

const deps = brokerDepsFromEnv(process.env);
export const handler = createWsDisconnectHandler(deps, deps.inbox);

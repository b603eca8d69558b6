import { createWsDefaultHandler } from './handlers';
import { brokerDepsFromEnv } from './runtime';

const deps = brokerDepsFromEnv(process.env);
export const handler = createWsDefaultHandler(deps, deps.inbox);

import { createWsDefaultHandler } from './handlers';
import { brokerDepsFromEnv, primeDeps } from './runtime';

const deps = brokerDepsFromEnv(process.env);
// During the init phase: the first message does not pay for the SDK's first call.
await primeDeps(deps);
export const handler = createWsDefaultHandler(deps, deps.inbox);

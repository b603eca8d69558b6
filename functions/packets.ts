import { createPacketsHandler } from './handlers';
import { brokerDepsFromEnv, primeDeps } from './runtime';

const deps = brokerDepsFromEnv(process.env);
// During the init phase: the first packets do not pay for the SDK's first call.
await primeDeps(deps);
export const handler = createPacketsHandler(deps, deps.directory);

import { createHttpPublishHandler } from './http-publish-handler';
import { brokerDepsFromEnv, primeDeps } from './runtime';

const deps = brokerDepsFromEnv(process.env);
// During the init phase: the first request does not pay for the SDK's first call.
await primeDeps(deps);
export const handler = createHttpPublishHandler(deps);

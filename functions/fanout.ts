import { createFanoutHandler } from './handlers';
import { brokerDepsFromEnv } from './runtime';

export const handler = createFanoutHandler(brokerDepsFromEnv(process.env));

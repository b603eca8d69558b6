import { createPacketsHandler } from './handlers';
import { brokerDepsFromEnv } from './runtime';

export const handler = createPacketsHandler(brokerDepsFromEnv(process.env));

import { createWsDefaultHandler } from './handlers';
import { brokerDepsFromEnv } from './runtime';

export const handler = createWsDefaultHandler(brokerDepsFromEnv(process.env));

import { createWsDisconnectHandler } from './handlers';
import { brokerDepsFromEnv } from './runtime';

export const handler = createWsDisconnectHandler(brokerDepsFromEnv(process.env));

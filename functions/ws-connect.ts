import { createWsConnectHandler } from './handlers';
import { brokerDepsFromEnv } from './runtime';

export const handler = createWsConnectHandler(brokerDepsFromEnv(process.env));

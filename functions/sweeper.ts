import { createSweeperHandler } from './handlers';
import { brokerDepsFromEnv } from './runtime';

// Scheduled every minute: ends connections whose $disconnect (or listener close) never came, and publishes $SYS/broker/.
const deps = brokerDepsFromEnv(process.env);
export const handler = createSweeperHandler(deps, deps.directory, deps.gateway, deps.inbox, {}, deps.statsStore);

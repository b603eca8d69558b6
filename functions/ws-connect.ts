import { createWsConnectHandler } from './handlers';

// `$connect` needs no broker state: it only agrees the subprotocol.
export const handler = createWsConnectHandler();

/** Where the broker writes what happened (shared/util/logger.ts writes JSON lines). */
export type { Logger } from '../../util/logger';

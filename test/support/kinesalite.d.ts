/** kinesalite (an in-process Kinesis for tests) ships no types: the part the tests use. */
declare module 'kinesalite' {
  import type { Server } from 'node:http';

  interface KinesaliteOptions {
    readonly createStreamMs?: number;
    readonly deleteStreamMs?: number;
    readonly updateStreamMs?: number;
    readonly shardLimit?: number;
    /** A LevelDB folder; in memory when absent. */
    readonly path?: string;
  }

  export default function kinesalite(options?: KinesaliteOptions): Server;
}

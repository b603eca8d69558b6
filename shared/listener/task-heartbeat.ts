/**
 * The listener task's heartbeat: at start and then every `intervalMs`, the task tells the handler
 * it is alive, which registers it (shared/store/dynamo-connection-directory.ts) so the sweeper
 * knows the task exists and asks it, once per run, whether it still answers: a task that does not
 * has its connections ended by task, not probed one by one. A failed beat is logged, not fatal:
 * the next one registers the task.
 */
import type { Logger } from '../broker/ports';
import type { PacketSink } from './events';

/** Once a minute: a registration that TTL removes a day after the task's last beat. */
export const HEARTBEAT_INTERVAL_MS = 60_000;

export class TaskHeartbeat {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sink: PacketSink,
    private readonly log: Logger,
    private readonly intervalMs = HEARTBEAT_INTERVAL_MS,
  ) {}

  /** The first beat now, then one every interval; the task's start never waits on the handler. */
  start(endpoint: string): void {
    const beat = (): Promise<void> =>
      this.sink.invoke({ type: 'heartbeat', endpoint }).then(
        () => undefined,
        (error: unknown) => this.log.warn('heartbeat failed', { endpoint, error: String(error) }),
      );
    void beat();
    this.timer = setInterval(() => void beat(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

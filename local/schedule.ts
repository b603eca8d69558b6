/** Scheduled jobs in the harness, as EventBridge schedules invoke them in the cloud. */
import type { Logger } from '../shared/broker/ports';

/** Runs a job every `ms`, one run at a time (a tick while one runs is skipped); `stop` waits for the run in progress. */
export function every(ms: number, job: () => Promise<unknown>, log: Logger): { stop: () => Promise<void> } {
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = job()
      .catch((error) => log.warn('scheduled job failed', { error: String(error) }))
      .finally(() => (running = undefined));
  }, ms);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}

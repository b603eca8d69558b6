/** The fan-out function's work: one part of a large fan-out (see fanout.ts), delivered here. */
import { deliver } from './actions';
import type { BrokerDeps } from './context';
import { Dispatcher } from './dispatcher';
import { deliveriesOf } from './fanout';
import type { FanoutJob } from './ports';

/** Deliver one part and send it; returns the connections found gone, for the entry point to end. */
export async function runFanoutJob(deps: BrokerDeps, job: FanoutJob): Promise<string[]> {
  // A part is delivered here, never split again.
  const { fanout: _workers, ...here } = deps;
  const dispatcher = new Dispatcher(here);
  await dispatcher.perform([deliver(deliveriesOf(job))]);
  return dispatcher.flush();
}

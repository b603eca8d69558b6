/**
 * A fleet's shape: 1,000 devices each subscribed to its own `dev/<i>/#`, 10 dashboards to
 * `dev/+/temp`, and publishes to `dev/<i>/temp`. Each publish matches 11 subscriptions of 1,010:
 * the routing index must not read the 999 that do not match.
 */
import { publishToSubscribers } from './publish';
import { n, type Scenario, type Size } from './scenario';

const DEVICES = 1_000;
const DASHBOARDS = 10;
const counts = { quick: 2_000, full: 20_000 } satisfies Record<Size, number>;
const WINDOW = 50;

export const wildcards: Scenario = {
  name: 'wildcards',
  describe: (size) =>
    `QoS 0, ${n(DEVICES)} subscribers of dev/<i>/# and ${DASHBOARDS} of dev/+/temp, up to ${n(counts[size])} publishes to dev/<i>/temp (${DASHBOARDS + 1} deliveries each), ${WINDOW} in flight`,
  run: (ctx) =>
    publishToSubscribers(ctx, {
      subscribers: DEVICES + DASHBOARDS,
      filter: (i) => (i < DEVICES ? ctx.topic(`dev/${i}/#`) : ctx.topic('dev/+/temp')),
      subscriberQos: 0,
      topic: (seq) => ctx.topic(`dev/${seq % DEVICES}/temp`),
      qos: 0,
      fanOut: DASHBOARDS + 1,
      count: counts[ctx.size],
      window: WINDOW,
    }),
};

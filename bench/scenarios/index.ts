import { connackLatency } from './connack-latency';
import { connectStorm } from './connect-storm';
import { fanOut100, fanOut1000 } from './fan-out';
import { fleetQos0, fleetQos0Depth7, fleetQos1, fleetQos1Depth7, fleetScenario } from './fleet';
import { idleConnections } from './idle-connections';
import { qos0OneToOne, qos0Paced, qos1OneToOne, qos1Persistent } from './one-to-one';
import { retainedReplay } from './retained';
import { qos1Rule } from './rule';
import type { Scenario } from './scenario';
import { wildcards } from './wildcards';

/**
 * In the order they run: CONNACK latency first, as it needs a broker no client has used yet; the
 * idle connections last, as closing 10,000 of them takes the harness a while.
 */
export const SCENARIOS: readonly Scenario[] = [
  connackLatency,
  qos0OneToOne,
  qos1OneToOne,
  qos1Persistent,
  qos0Paced,
  fanOut100,
  fanOut1000,
  wildcards,
  retainedReplay,
  fleetQos0,
  fleetQos1,
  connectStorm,
  idleConnections,
];

/** Run only when named with `--scenario`: the deeper topics, `fleet`, which takes its QoS and depth from the flags, and `qos1-rule`, whose rule only a harness started for it loads. */
export const EXTRA_SCENARIOS: readonly Scenario[] = [fleetQos0Depth7, fleetQos1Depth7, fleetScenario, qos1Rule];

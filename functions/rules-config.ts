/**
 * The rules file (docs/rules.md), read once at start: MQTT_RULES_FILE in the environment (the
 * stack bundles the rules it was given as that file; `npm start -- --rules FILE` sets it). A
 * mistake is a ConfigurationError of one line. infra/ reads rules at synthesis with the same
 * functions, so a rule that would not load does not deploy.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { readFileSync } from 'node:fs';
import type { BrokerStats } from '../shared/broker/stats';
import type { Logger } from '../shared/broker/ports';
import { parseRulesText, RulesConfigError, type RuleConfig, type TargetConfig } from '../shared/rules/rule-config';
import { RuleEngine } from '../shared/rules/rule-engine';
import type { TargetFactory } from '../shared/rules/target-port';
import type { BackoffPolicy } from '../shared/util/backoff-retry';
import { ConfigurationError } from './security-config';

/** The rules of MQTT_RULES_FILE; undefined when it is not set. */
export function rulesFromEnv(env: Readonly<Record<string, string | undefined>>): RuleConfig[] | undefined {
  const file = env.MQTT_RULES_FILE;
  if (file === undefined || file === '') return undefined;
  return readRulesFile(file);
}

export function readRulesFile(file: string): RuleConfig[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigurationError(`rules file ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return asConfigurationError(() => parseRulesText(text, file));
}

/**
 * What only the cloud refuses: a `file` dead-letter destination (the harness's), and a webhook
 * that is not HTTPS (the functions' security group lets out port 443 only).
 */
export function checkCloudRules(rules: readonly RuleConfig[], source: string): void {
  rules.forEach((rule, i) => {
    const check = (target: TargetConfig | undefined, field: string) => {
      if (target?.type === 'file') throw new ConfigurationError(`${source}: rules[${i}].${field}: "file" exists only in the local harness; in the cloud use an SQS queue`);
      if (target?.type === 'http' && !target.url.startsWith('https://')) {
        throw new ConfigurationError(`${source}: rules[${i}].${field}.url: "${target.url}" must be https:// in the cloud (the functions reach out on port 443 only)`);
      }
    };
    check(rule.target, 'target');
    check(rule.deadLetter, 'deadLetter');
  });
}

export interface RulesOptions {
  readonly rules: readonly RuleConfig[];
  readonly targets: TargetFactory;
  /** The engine's retries per target call; its defaults otherwise (shared/rules/rule-engine.ts). */
  readonly retry?: BackoffPolicy;
}

/**
 * The rule deliveries each invocation started: an entry point runs its handler in a scope of its
 * own (`inRuleScope`) and waits for them before it returns; in the harness, where every handler
 * shares one process, an invocation then does not wait for another's.
 */
const invocationScope = new AsyncLocalStorage<Set<Promise<unknown>>>();

export function inRuleScope<T>(run: () => Promise<T>): Promise<T> {
  return invocationScope.run(new Set(), run);
}

/** The rules engine of a process, its outcomes counted in the broker's counters (CloudWatch: RuleDeliveries, RuleDeadLetters, RuleFailures). */
export function createRuleEngine(options: RulesOptions, log: Logger, stats?: BrokerStats): RuleEngine {
  const counters = { delivered: 'ruleDeliveries', deadLettered: 'ruleDeadLetters', failed: 'ruleFailures' } as const;
  return new RuleEngine({
    rules: options.rules,
    targets: options.targets,
    log,
    ...(options.retry ? { retry: options.retry } : {}),
    count: (what, n) => stats?.count(counters[what], n),
    scope: () => invocationScope.getStore(),
  });
}

function asConfigurationError<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof RulesConfigError) throw new ConfigurationError(error.message);
    throw error;
  }
}

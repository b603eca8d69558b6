/**
 * The rules' targets in the harness. `lambda` targets run in this process: a function registered
 * by its name or ARN (HarnessOptions.rules.functions), or, in a rules file, a JavaScript or
 * TypeScript module whose path is the target's `function` (`./telemetry.ts`), its exported
 * `handler` called with the event as Lambda would pass it (JSON in, JSON out). As an asynchronous
 * Invoke, the call is accepted at once and the handler runs after; its failure is logged (Lambda's
 * own retries of asynchronous invocations are not emulated). `file` dead-letter destinations
 * append a JSON line per message. HTTP webhooks are called as in the cloud; SQS, Kinesis and
 * EventBridge targets use the AWS SDK with the environment's region, credentials and endpoints
 * (AWS_ENDPOINT_URL_KINESIS and the like point one at a local stand-in, such as kinesalite).
 */
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from '../shared/broker/ports';
import type { RuleConfig } from '../shared/rules/rule-config';
import type { TargetFactory, TargetSender } from '../shared/rules/target-port';
import { awsRuleTargets, type AwsTargetClients } from '../shared/rule-targets/aws-targets';
import { ConfigurationError } from '../functions/security-config';

/** A Lambda function's handler, run in-process. */
export type LocalFunction = (event: unknown) => unknown;

export interface LocalRuleTargetOptions {
  /** Functions by name or ARN, for `lambda` targets. */
  readonly functions?: Readonly<Record<string, LocalFunction>>;
  /** SDK clients for the SQS, Kinesis and EventBridge targets (the harness's tests point them at local stand-ins). */
  readonly clients?: AwsTargetClients;
  /** Relative module paths are resolved from here (the rules file's folder). */
  readonly baseDir?: string;
  readonly log: Logger;
}

/** Resolves every `lambda` target to a local function (importing module paths) once, at start; a target with none is a ConfigurationError. */
export async function localRuleTargets(rules: readonly RuleConfig[], options: LocalRuleTargetOptions): Promise<TargetFactory> {
  const functions = new Map<string, LocalFunction>(Object.entries(options.functions ?? {}));
  for (const target of rules.flatMap((rule) => [rule.target, rule.deadLetter])) {
    if (target?.type !== 'lambda' || functions.has(target.function)) continue;
    functions.set(target.function, await importHandler(target.function, options.baseDir ?? process.cwd()));
  }
  const aws = awsRuleTargets(options.clients);
  return (target, rule) => {
    if (target.type === 'lambda') return inProcessLambda(functions.get(target.function)!, target.function, options.log);
    if (target.type === 'file') return fileTarget(target.path);
    return aws(target, rule);
  };
}

async function importHandler(name: string, baseDir: string): Promise<LocalFunction> {
  if (!/\.(m?js|ts)$/.test(name)) {
    throw new ConfigurationError(`lambda target "${name}" has no local function: give a module path (./handler.ts, exporting handler) or register it with the harness`);
  }
  const module = (await import(pathToFileURL(path.resolve(baseDir, name)).href).catch((error: unknown) => {
    throw new ConfigurationError(`lambda target "${name}" cannot be loaded (${error instanceof Error ? error.message : String(error)})`);
  })) as { handler?: unknown };
  if (typeof module.handler !== 'function') throw new ConfigurationError(`lambda target "${name}" exports no handler function`);
  return module.handler as LocalFunction;
}

function inProcessLambda(handler: LocalFunction, name: string, log: Logger): TargetSender {
  return {
    maxEntries: 100,
    maxBytes: 250 * 1024,
    send: async (entries) => {
      const event = JSON.parse(JSON.stringify({ messages: entries.map((e) => e.body) })) as unknown;
      setImmediate(() => {
        Promise.resolve()
          .then(() => handler(event))
          .catch((error: unknown) => log.warn('local rule function failed', { function: name, error: String(error) }));
      });
      return [];
    },
  };
}

function fileTarget(file: string): TargetSender {
  return {
    maxEntries: 1000,
    maxBytes: 4 * 1024 * 1024,
    send: async (entries) => {
      await appendFile(file, entries.map((e) => `${JSON.stringify(e.body)}\n`).join(''));
      return [];
    },
  };
}


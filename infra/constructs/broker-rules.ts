/**
 * What a function that routes messages needs for the rules (docs/rules.md): the rules bundled
 * with its code as `rules.json` (MQTT_RULES_FILE), and the right to reach each target and
 * dead-letter destination, least privilege: `lambda:InvokeFunction` on that function,
 * `sqs:SendMessage` on that queue, `kinesis:PutRecords` on that stream, `events:PutEvents` on that
 * bus, and nothing for a webhook or a republish. A name is resolved in the stack's own account and
 * region.
 */
import { ArnFormat, Stack } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { ICommandHooks } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { TargetConfig } from '../../shared/rules/rule-config';
import type { RulesContext } from '../rules-context';

/** Where the bundled rules are in the function's file system (its code is unpacked in /var/task). */
export const BUNDLED_RULES_FILE = '/var/task/rules.json';

/** Copies the rules into the function's bundle, after esbuild. */
export function rulesBundling(rules: RulesContext): ICommandHooks {
  return {
    beforeBundling: () => [],
    beforeInstall: () => [],
    afterBundling: (_inputDir, outputDir) => [`cp "${rules.file}" "${outputDir}/rules.json"`],
  };
}

/** Points the function at its bundled rules and grants it its targets. */
export function attachRules(fn: NodejsFunction, rules: RulesContext): void {
  fn.addEnvironment('MQTT_RULES_FILE', BUNDLED_RULES_FILE);
  const stack = Stack.of(fn);
  const byAction = new Map<string, Set<string>>();
  for (const target of rules.rules.flatMap((rule) => [rule.target, ...(rule.deadLetter ? [rule.deadLetter] : [])])) {
    const grant = targetGrant(stack, target);
    if (!grant) continue;
    const resources = byAction.get(grant.action) ?? new Set<string>();
    resources.add(grant.resource);
    byAction.set(grant.action, resources);
  }
  for (const [action, resources] of byAction) fn.addToRolePolicy(new PolicyStatement({ actions: [action], resources: [...resources] }));
}

/** The one action and resource a target needs; none for a webhook or a republish. */
export function targetGrant(stack: Stack, target: TargetConfig): { action: string; resource: string } | undefined {
  switch (target.type) {
    case 'lambda':
      return {
        action: 'lambda:InvokeFunction',
        resource: target.function.startsWith('arn:')
          ? target.function
          : stack.formatArn({ service: 'lambda', resource: 'function', resourceName: target.function, arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
      };
    case 'sqs':
      return { action: 'sqs:SendMessage', resource: queueArn(stack, target.queue) };
    case 'kinesis':
      return {
        action: 'kinesis:PutRecords',
        resource: target.stream.startsWith('arn:') ? target.stream : stack.formatArn({ service: 'kinesis', resource: 'stream', resourceName: target.stream }),
      };
    case 'eventbridge': {
      const bus = target.bus ?? 'default';
      return { action: 'events:PutEvents', resource: bus.startsWith('arn:') ? bus : stack.formatArn({ service: 'events', resource: 'event-bus', resourceName: bus }) };
    }
    default:
      return undefined;
  }
}

/** A queue's ARN from its ARN or its URL (https://sqs.<region>.amazonaws.com/<account>/<name>, checked at synthesis). */
function queueArn(stack: Stack, queue: string): string {
  if (queue.startsWith('arn:')) return queue;
  const { hostname, pathname } = new URL(queue);
  const region = hostname.split('.')[1]!;
  const [, account, name] = pathname.split('/');
  return stack.formatArn({ service: 'sqs', region, account: account!, resource: name!, arnFormat: ArnFormat.NO_RESOURCE_NAME });
}

/** Synthesizes the broker stack for assertions, as `cdk synth` would, minus the Lambda bundling. */
import { App, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { BrokerStack } from '../../infra/broker-stack';

/** A certificate ARN of the right shape; synthesis never looks it up. */
export const TEST_CERTIFICATE_ARN = 'arn:aws:acm:us-east-1:111111111111:certificate/00000000-0000-0000-0000-000000000000';

export interface Synthesized {
  readonly app: App;
  readonly stack: BrokerStack;
  readonly template: Template;
}

const cache = new Map<string, Synthesized>();

/**
 * The stack with `context` on top of a test certificate. Bundling is skipped (the
 * `aws:cdk:bundling-stacks` context): the CLI synthesis test and bundles.test.ts run esbuild.
 * Synthesized once per distinct context.
 */
export function synthBroker(context: Record<string, unknown> = {}, options: { certificate?: boolean } = {}): Synthesized {
  const full = { ...(options.certificate === false ? {} : { certificateArn: TEST_CERTIFICATE_ARN }), ...context };
  const key = JSON.stringify(full);
  let synthesized = cache.get(key);
  if (!synthesized) {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [], ...full } });
    const stack = new BrokerStack(app, 'Test');
    synthesized = { app, stack, template: Template.fromStack(stack) };
    cache.set(key, synthesized);
  }
  return synthesized;
}

/** The logical id CloudFormation knows a construct's resource by. */
export function logicalId(synthesized: Synthesized, construct: { node: { defaultChild?: unknown } }): string {
  return synthesized.stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

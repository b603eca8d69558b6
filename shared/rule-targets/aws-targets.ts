/**
 * The targets of the rules in the cloud: one SDK client per service, made when a rule first needs
 * it, at start. The SDK's own retries are off (one attempt per call): the rules engine retries
 * only the refused entries, with its own bounds (shared/rules/rule-engine.ts).
 */
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { TargetFactory } from '../rules/target-port';
import { EventBridgeTargetSender } from './eventbridge-target';
import { HttpTargetSender } from './http-target';
import { KinesisTargetSender } from './kinesis-target';
import { LambdaTargetSender } from './lambda-target';
import { SqsTargetSender } from './sqs-target';

export interface AwsTargetClients {
  lambda?: Pick<LambdaClient, 'send'>;
  sqs?: Pick<SQSClient, 'send'>;
  kinesis?: Pick<KinesisClient, 'send'>;
  eventbridge?: Pick<EventBridgeClient, 'send'>;
}

/** `clients`: given ones are used (tests, the harness); the others are made with the SDK's defaults (region and credentials from the environment). */
export function awsRuleTargets(clients: AwsTargetClients = {}): TargetFactory {
  const made: AwsTargetClients = { ...clients };
  return (target) => {
    switch (target.type) {
      case 'http':
        return new HttpTargetSender(target);
      case 'lambda':
        return new LambdaTargetSender((made.lambda ??= new LambdaClient({ maxAttempts: 1 })), target);
      case 'sqs':
        return new SqsTargetSender((made.sqs ??= new SQSClient({ maxAttempts: 1 })), target);
      case 'kinesis':
        return new KinesisTargetSender((made.kinesis ??= new KinesisClient({ maxAttempts: 1 })), target);
      case 'eventbridge':
        return new EventBridgeTargetSender((made.eventbridge ??= new EventBridgeClient({ maxAttempts: 1 })), target);
      case 'file':
        throw new Error('a "file" dead-letter destination exists only in the local harness');
    }
  };
}

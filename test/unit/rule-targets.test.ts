/** The AWS SDK request each rule target builds, and how it reads the answer's per-entry failures. */
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { InvokeCommand, ResourceNotFoundException, TooManyRequestsException } from '@aws-sdk/client-lambda';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { EventBridgeTargetSender } from '../../shared/rule-targets/eventbridge-target';
import { KinesisTargetSender } from '../../shared/rule-targets/kinesis-target';
import { LambdaTargetSender } from '../../shared/rule-targets/lambda-target';
import { queueUrlOf, SqsTargetSender } from '../../shared/rule-targets/sqs-target';
import type { TargetEntry } from '../../shared/rules/target-port';

/** A client that records the commands it is sent and answers each with `answer`. */
function client(answer: (command: unknown) => unknown) {
  const sent: unknown[] = [];
  return {
    sent,
    send: (async (command: unknown) => {
      sent.push(command);
      const result = answer(command);
      if (result instanceof Error) throw result;
      return result;
    }) as never,
  };
}

const entries: TargetEntry[] = [
  { topic: 'sensors/d1/temp', clientId: 'd1', body: { topic: 'sensors/d1/temp', payload: '21' } },
  { topic: 'sensors/d2/temp', clientId: 'd2', body: { topic: 'sensors/d2/temp', payload: '22' } },
];

describe('SQS target', () => {
  it('sends one SendMessageBatch to the queue URL (from its ARN), and retries only what SQS did not fault the sender for', async () => {
    const sqs = client(() => ({ Failed: [{ Id: '1', Code: 'InternalError', SenderFault: false }, { Id: '0', Code: 'InvalidParameterValue', SenderFault: true, Message: 'bad' }] }));
    const failures = await new SqsTargetSender(sqs, { type: 'sqs', queue: 'arn:aws:sqs:eu-west-1:123456789012:telemetry' }).send(entries);
    const command = sqs.sent[0] as SendMessageBatchCommand;
    expect(command).toBeInstanceOf(SendMessageBatchCommand);
    expect(command.input).toEqual({
      QueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/telemetry',
      Entries: [
        { Id: '0', MessageBody: JSON.stringify(entries[0]!.body) },
        { Id: '1', MessageBody: JSON.stringify(entries[1]!.body) },
      ],
    });
    expect(failures).toEqual([
      { index: 1, error: 'InternalError', retryable: true },
      { index: 0, error: 'InvalidParameterValue: bad', retryable: false },
    ]);
  });

  it('takes a queue URL as it is', () => {
    expect(queueUrlOf('https://sqs.us-east-1.amazonaws.com/1/q')).toBe('https://sqs.us-east-1.amazonaws.com/1/q');
  });
});

describe('Kinesis target', () => {
  it('puts one record per message keyed by topic, and retries only throttled records', async () => {
    const kinesis = client(() => ({ FailedRecordCount: 1, Records: [{ SequenceNumber: '1' }, { ErrorCode: 'ProvisionedThroughputExceededException', ErrorMessage: 'slow down' }] }));
    const failures = await new KinesisTargetSender(kinesis, { type: 'kinesis', stream: 'arn:aws:kinesis:eu-west-1:123456789012:stream/telemetry' }).send(entries);
    const command = kinesis.sent[0] as PutRecordsCommand;
    expect(command).toBeInstanceOf(PutRecordsCommand);
    expect(command.input.StreamARN).toBe('arn:aws:kinesis:eu-west-1:123456789012:stream/telemetry');
    expect(command.input.Records!.map((r) => [r.PartitionKey, Buffer.from(r.Data!).toString()])).toEqual([
      ['sensors/d1/temp', JSON.stringify(entries[0]!.body)],
      ['sensors/d2/temp', JSON.stringify(entries[1]!.body)],
    ]);
    expect(failures).toEqual([{ index: 1, error: 'ProvisionedThroughputExceededException: slow down', retryable: true }]);
  });

  it('uses the partition key template, and a stream name as a name', async () => {
    const kinesis = client(() => ({ Records: [{}, {}] }));
    await new KinesisTargetSender(kinesis, { type: 'kinesis', stream: 'telemetry', partitionKey: '${clientId}' }).send(entries);
    const input = (kinesis.sent[0] as PutRecordsCommand).input;
    expect(input.StreamName).toBe('telemetry');
    expect(input.Records!.map((r) => r.PartitionKey)).toEqual(['d1', 'd2']);
  });
});

describe('EventBridge target', () => {
  it('puts one event per message on the bus, and retries only throttled entries', async () => {
    const events = client(() => ({ FailedEntryCount: 2, Entries: [{ ErrorCode: 'ThrottlingException' }, { ErrorCode: 'ValidationException', ErrorMessage: 'no' }] }));
    const failures = await new EventBridgeTargetSender(events, { type: 'eventbridge', bus: 'fleet', detailType: 'Reading' }).send(entries);
    const command = events.sent[0] as PutEventsCommand;
    expect(command).toBeInstanceOf(PutEventsCommand);
    expect(command.input.Entries![0]).toEqual({ EventBusName: 'fleet', Source: 'mqtt.rules', DetailType: 'Reading', Detail: JSON.stringify(entries[0]!.body) });
    expect(failures).toEqual([
      { index: 0, error: 'ThrottlingException', retryable: true },
      { index: 1, error: 'ValidationException: no', retryable: false },
    ]);
  });

  it('defaults to the default bus', async () => {
    const events = client(() => ({ FailedEntryCount: 0, Entries: [{ EventId: 'a' }, { EventId: 'b' }] }));
    expect(await new EventBridgeTargetSender(events, { type: 'eventbridge' }).send(entries)).toEqual([]);
    expect((events.sent[0] as PutEventsCommand).input.Entries![1]).toMatchObject({ EventBusName: 'default', DetailType: 'MQTT message' });
  });
});

describe('Lambda target', () => {
  it('invokes the function asynchronously (InvocationType Event) with the batch as {"messages": [...]}', async () => {
    const lambda = client(() => ({ StatusCode: 202 }));
    expect(await new LambdaTargetSender(lambda, { type: 'lambda', function: 'telemetry' }).send(entries)).toEqual([]);
    const command = lambda.sent[0] as InvokeCommand;
    expect(command).toBeInstanceOf(InvokeCommand);
    expect(command.input).toMatchObject({ FunctionName: 'telemetry', InvocationType: 'Event' });
    expect(JSON.parse(Buffer.from(command.input.Payload as Uint8Array).toString())).toEqual({ messages: entries.map((e) => e.body) });
  });

  it('retries throttling, not a function that does not exist', async () => {
    const throttled = new TooManyRequestsException({ message: 'rate', $metadata: {} });
    const missing = new ResourceNotFoundException({ message: 'no such function', $metadata: {} });
    const target = { type: 'lambda', function: 'telemetry' } as const;
    expect((await new LambdaTargetSender(client(() => throttled), target).send(entries)).map((f) => f.retryable)).toEqual([true, true]);
    expect((await new LambdaTargetSender(client(() => missing), target).send(entries)).map((f) => f.retryable)).toEqual([false, false]);
  });
});

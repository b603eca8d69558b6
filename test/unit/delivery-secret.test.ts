/** The functions' delivery secret: fetched from Secrets Manager once per container, again only after a failure. */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { deliverySecretFromSecretsManager } from '../../functions/delivery-secret';

function fakeSecretsManager(answers: Array<string | Error>): { client: SecretsManagerClient; asked: string[] } {
  const asked: string[] = [];
  const client = {
    send: async (command: { input: { SecretId: string } }) => {
      asked.push(command.input.SecretId);
      const answer = answers.shift();
      if (answer instanceof Error) throw answer;
      return { SecretString: answer };
    },
  } as unknown as SecretsManagerClient;
  return { client, asked };
}

describe('the delivery secret in a function', () => {
  const arn = 'arn:aws:secretsmanager:us-east-1:111111111111:secret:DeliverySecret-abc123';
  const secret = 'x'.repeat(64);

  it('is fetched once, however many deliveries ask for it', async () => {
    const { client, asked } = fakeSecretsManager([secret]);
    const get = deliverySecretFromSecretsManager(arn, client);
    expect(await Promise.all([get(), get(), get()])).toEqual([secret, secret, secret]);
    expect(await get()).toBe(secret);
    expect(asked).toEqual([arn]);
  });

  it('is fetched again after a failure, and refused when too short to be the stack\'s', async () => {
    const { client, asked } = fakeSecretsManager([new Error('throttled'), 'short', secret]);
    const get = deliverySecretFromSecretsManager(arn, client);
    await expect(get()).rejects.toThrow('throttled');
    await expect(get()).rejects.toThrow(/at least 32 characters/);
    expect(await get()).toBe(secret);
    expect(asked).toHaveLength(3);
  });
});

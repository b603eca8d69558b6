/**
 * The delivery secret (shared/gateway/delivery-signature.ts) in a Lambda function: the stack's
 * Secrets Manager secret, named by DELIVERY_SECRET_ARN, fetched on the first delivery to a device
 * and kept for the life of the container (one GetSecretValue per cold start). A failed fetch is
 * tried again on the next delivery.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { MIN_DELIVERY_SECRET_LENGTH } from '../shared/gateway/delivery-signature';

export function deliverySecretFromSecretsManager(secretArn: string, client = new SecretsManagerClient({})): () => Promise<string> {
  let secret: Promise<string> | undefined;
  return () => {
    secret ??= fetchSecret(client, secretArn).catch((error: unknown) => {
      secret = undefined;
      throw error;
    });
    return secret;
  };
}

async function fetchSecret(client: SecretsManagerClient, secretArn: string): Promise<string> {
  const { SecretString } = await client.send(new GetSecretValueCommand({ SecretId: secretArn }));
  if (!SecretString || SecretString.length < MIN_DELIVERY_SECRET_LENGTH) {
    throw new Error(`the delivery secret ${secretArn} must be a string of at least ${MIN_DELIVERY_SECRET_LENGTH} characters`);
  }
  return SecretString;
}

/**
 * HTTP publish's Lambda logic: an API Gateway HTTP API (payload format 2.0) request for
 * `POST /topics/{proxy+}` in, shared/http/http-publish.ts does the work, the response out. The
 * local harness calls the same handler with the same event shape.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from 'aws-lambda';
import type { BrokerDeps } from '../shared/broker/context';
import { handleHttpPublish } from '../shared/http/http-publish';

const TOPICS_PREFIX = '/topics/';

export function createHttpPublishHandler(deps: BrokerDeps) {
  return async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyResultV2> => {
    const { requestId, http } = event.requestContext;
    if (http.method !== 'POST') return { statusCode: 405, headers: { allow: 'POST' }, body: '' };
    // API Gateway's HTTP API hands over rawPath percent-decoded already (a `%23` the client sent is
    // `#` here, and refused as a wildcard); decoding it again would turn a topic's literal `%41` into `A`.
    if (!event.rawPath.startsWith(TOPICS_PREFIX)) return { statusCode: 404, body: '' };
    const topic = event.rawPath.slice(TOPICS_PREFIX.length);
    const body = event.body === undefined ? Buffer.alloc(0) : Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
    const authorization = event.headers.authorization;
    try {
      return await handleHttpPublish(deps, {
        topic,
        query: event.queryStringParameters ?? {},
        ...(authorization !== undefined ? { authorization } : {}),
        body,
        sourceAddress: http.sourceIp,
        requestId,
      });
    } finally {
      // As the packet handler's: the counters flushed when their interval has passed, before Lambda freezes the container.
      await deps.stats?.flushIfDue().catch((error: unknown) => deps.log.warn('stats flush failed', { error: String(error) }));
    }
  };
}

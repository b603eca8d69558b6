/**
 * Byte pipes to a broker, one per door: a TCP socket (the listener, or any MQTT broker), or a
 * WebSocket to API Gateway, where MQTT packets travel base64-encoded in text messages, one packet
 * per message as a browser client sends them.
 */
import net from 'node:net';
import WebSocket from 'ws';

export type Door = 'tcp' | 'apigw';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
  /** Default tcp. */
  readonly door?: Door;
}

export interface Pipe {
  /** Bytes from the broker; set by the client before any can arrive. */
  onData: (chunk: Buffer) => void;
  onClose: (reason: string) => void;
  write(bytes: Buffer): void;
  /** Holds writes until `uncork`, so several packets leave in one system call (TCP only). */
  cork(): void;
  uncork(): void;
  /** Closes gracefully once written data is flushed. */
  end(): void;
  destroy(): void;
}

export function openPipe(endpoint: Endpoint, timeoutMs: number): Promise<Pipe> {
  return endpoint.door === 'apigw' ? openApiGateway(endpoint, timeoutMs) : openTcp(endpoint, timeoutMs);
}

function openTcp(endpoint: Endpoint, timeoutMs: number): Promise<Pipe> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: endpoint.host, port: endpoint.port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no TCP connection to ${endpoint.host}:${endpoint.port} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onError = (error: Error): void => {
      clearTimeout(timer);
      reject(error);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      const pipe: Pipe = {
        onData: () => undefined,
        onClose: () => undefined,
        write: (bytes) => void socket.write(bytes),
        cork: () => socket.cork(),
        uncork: () => socket.uncork(),
        end: () => void socket.end(),
        destroy: () => void socket.destroy(),
      };
      socket.on('data', (chunk: Buffer) => pipe.onData(chunk));
      socket.on('error', (error) => pipe.onClose(error.message));
      socket.on('close', () => pipe.onClose('connection closed'));
      resolve(pipe);
    });
  });
}

function openApiGateway(endpoint: Endpoint, timeoutMs: number): Promise<Pipe> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${endpoint.host}:${endpoint.port}`, 'mqtt', { handshakeTimeout: timeoutMs });
    ws.once('error', reject);
    ws.once('open', () => {
      ws.off('error', reject);
      const pipe: Pipe = {
        onData: () => undefined,
        onClose: () => undefined,
        write: (bytes) => ws.send(bytes.toString('base64')),
        cork: () => undefined,
        uncork: () => undefined,
        end: () => ws.close(1000),
        destroy: () => ws.terminate(),
      };
      // API Gateway does not say whether a posted message reaches the client as text or binary: take both.
      ws.on('message', (data: Buffer, isBinary) => pipe.onData(isBinary ? data : Buffer.from(data.toString('utf8'), 'base64')));
      ws.on('error', (error) => pipe.onClose(error.message));
      ws.on('close', () => pipe.onClose('connection closed'));
      resolve(pipe);
    });
  });
}

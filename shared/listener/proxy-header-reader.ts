/**
 * Takes the PROXY protocol v2 header off the front of a socket (see proxy-protocol.ts). The bytes
 * after it stay on the socket, which is left paused, for whichever door takes the socket next.
 */
import type net from 'node:net';
import { proxyHeaderLength, proxySourceAddress, ProxyProtocolError } from './proxy-protocol';

/**
 * Resolves with the client's address (the socket's peer when the header names none), or with
 * undefined when the socket closes before sending a byte (a load balancer's health check); rejects
 * when the first bytes are not a header, when none is whole within `timeoutMs`, or when the socket
 * closes in the middle of one.
 */
export function readProxyHeader(socket: net.Socket, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let needed: number | undefined;
    const finish = (error: Error | undefined, address?: string): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (error) reject(error);
      else resolve(address!);
    };
    const timer = setTimeout(() => finish(new ProxyProtocolError(`no PROXY protocol header within ${timeoutMs} ms`)), timeoutMs);
    const onClose = (): void => (received === 0 ? finish(undefined) : finish(new ProxyProtocolError('closed in its PROXY protocol header')));
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      received += chunk.length;
      try {
        // Joining is cheap until the length is known: the header's fixed part is 16 bytes.
        needed ??= proxyHeaderLength(Buffer.concat(chunks, Math.min(received, 16)));
        if (needed === undefined || received < needed) return;
        const bytes = Buffer.concat(chunks, received);
        const address = proxySourceAddress(bytes.subarray(0, needed)) ?? socket.remoteAddress;
        socket.pause();
        if (received > needed) socket.unshift(bytes.subarray(needed));
        finish(undefined, address ?? '');
      } catch (error) {
        finish(error instanceof Error ? error : new Error(String(error)));
      }
    };
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

/** Starting and stopping the listener's servers (and the local harness's), with errors that say what to do. */
import type http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import type tls from 'node:tls';

/** Listen, turning "port taken" into a one-line error that says what to do. */
export function listen(server: net.Server | http.Server | tls.Server, port: number, host: string, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(`${what} port ${port} on ${host} is taken: stop what uses it or choose another port`)
          : error,
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Stop accepting; resolves once the server's own sockets are closed. */
export function close(server: net.Server | http.Server | tls.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

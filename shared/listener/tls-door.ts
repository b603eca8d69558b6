/**
 * The listener's MQTT over TLS port. A plain TCP server accepts each socket, so that the
 * listener admits it (and reads its PROXY protocol v2 header, when required) before any TLS; the
 * socket is then handed to a TLS server that does not listen itself. In the cloud this is the
 * port the NLB passes through untouched when devices present certificates (mutual TLS), and the
 * header is the NLB's; locally, `npm start --tls`.
 *
 * With client certificates required, a handshake without a certificate, with one from another
 * CA, or with one the CRL revokes fails (the TLS server's `tlsClientError`, one log line), and a
 * verified certificate without the configured identity field is closed: no handler is invoked
 * for either.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../broker/ports';
import { certificateIdentity, clientCertificateServerOptions, type ClientCertificateOptions } from './client-certificate';
import { normalizeAddress } from './connection-caps';

export interface TlsDoorOptions {
  readonly cert: string;
  readonly key: string;
  /** Require a certificate from the operator's CA; its identity field is the connection's user name. */
  readonly clientCertificates?: ClientCertificateOptions;
  /** A handshake that never finishes is held no longer than a CONNECT that never comes. */
  readonly handshakeTimeoutMs: number;
}

/** A connection whose handshake succeeded: its client address (as admitted) and, with client certificates, its identity. */
export type SecureConnection = (socket: tls.TLSSocket, address: string, identity: string | undefined) => void;

export class TlsDoor {
  /** The server that listens: plain TCP, sockets admitted before their handshake. */
  readonly server: net.Server;
  private readonly tlsServer: tls.Server;
  private readonly addresses = new WeakMap<net.Socket, string>();

  constructor(
    private readonly options: TlsDoorOptions,
    admit: (socket: net.Socket) => void,
    secure: SecureConnection,
    private readonly log: Logger,
  ) {
    this.server = net.createServer({ noDelay: true }, admit);
    this.tlsServer = tls.createServer(
      {
        cert: options.cert,
        key: options.key,
        handshakeTimeout: options.handshakeTimeoutMs,
        ...(options.clientCertificates ? clientCertificateServerOptions(options.clientCertificates) : {}),
      },
      (socket) => this.secured(socket, secure),
    );
    this.tlsServer.on('tlsClientError', (error) => log.info('TLS handshake failed', { door: 'MQTT over TLS', error: error.message }));
  }

  /** An admitted socket, from `address`: its TLS handshake begins (bytes already read after a PROXY header included). */
  handshake(socket: net.Socket, address: string): void {
    this.addresses.set(socket, address);
    this.tlsServer.emit('connection', socket);
  }

  private secured(socket: tls.TLSSocket, secure: SecureConnection): void {
    // The TCP socket under it was given a handler when admitted; the TLS socket needs its own (a reset after the handshake).
    socket.on('error', (error) => this.log.info('socket error', { door: 'MQTT over TLS', error: error.message }));
    const address = this.addresses.get(rawSocketOf(socket)) ?? normalizeAddress(socket.remoteAddress ?? '');
    const field = this.options.clientCertificates?.identity;
    const identity = field ? certificateIdentity(socket, field) : undefined;
    if (field && identity === undefined) {
      this.log.warn('connection refused', { door: 'MQTT over TLS', why: `the client certificate has no ${field}`, address });
      socket.destroy();
      return;
    }
    secure(socket, address, identity);
  }
}

/**
 * The TCP socket a TLS socket was made from. Node keeps it as `_parent` (not in its typings);
 * absent, the TLS socket's own peer address serves.
 */
export function rawSocketOf(socket: tls.TLSSocket): net.Socket {
  return (socket as tls.TLSSocket & { _parent?: net.Socket })._parent ?? socket;
}

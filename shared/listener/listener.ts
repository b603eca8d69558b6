/**
 * The device door: MQTT over TCP and MQTT over WebSocket (binary frames, path /mqtt), plus the
 * delivery endpoint through which handlers write to these connections. Holds sockets and
 * nothing else: every packet goes to the packet handler.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import { defaultBrokerConfig } from '../broker/context';
import type { Logger } from '../broker/ports';
import { newListenerConnectionId } from '../gateway/connection-id';
import { defaultDoorOptions } from '../gateway/door-limits';
import { ClientConnection, type ConnectionLimits, type Transport } from './client-connection';
import { createDeliveryServer } from './delivery-endpoint';
import type { PacketSink } from './events';

export interface ListenerOptions {
  readonly host: string;
  readonly mqttPort: number;
  readonly wsPort: number;
  readonly deliveryPort: number;
  /** The host handlers use to reach the delivery endpoint (the task's private address in the cloud). */
  readonly advertisedHost: string;
  readonly sink: PacketSink;
  readonly log: Logger;
  readonly limits?: Partial<ConnectionLimits>;
  /** MQTT over TLS (mqtts) on its own port, with this certificate and key (PEM). */
  readonly tls?: { readonly port: number; readonly cert: string; readonly key: string };
}

export interface ListenerAddresses {
  readonly mqttPort: number;
  /** Present when the listener serves TLS. */
  readonly mqttsPort?: number;
  readonly wsPort: number;
  readonly deliveryEndpoint: string;
}

/** How long a graceful close waits for the client to close its side before cutting it off. */
const GRACEFUL_CLOSE_MS = 2_000;

const defaultLimits: ConnectionLimits = {
  maximumPacketSize: defaultBrokerConfig.maximumPacketSize,
  connectTimeoutMs: 10_000,
  maxBatchPackets: 100,
  keepAliveLimit: defaultDoorOptions.keepAliveLimit.listener,
  maxQueuedBytes: 1024 * 1024,
};

export class MqttListener {
  /** Connections that can be written to, by id. */
  private readonly connections = new Map<string, ClientConnection>();
  /** Connections the handler is not finished with yet (a closed socket may still have packets in flight). */
  private readonly unfinished = new Set<ClientConnection>();
  private readonly tcpServer: net.Server;
  private readonly tlsServer: tls.Server | undefined;
  private readonly wsHttpServer: http.Server;
  private readonly wsServer: WebSocketServer;
  private readonly deliveryServer: http.Server;
  private readonly limits: ConnectionLimits;
  private readonly sink: PacketSink;
  /** The device sockets (TCP and TLS), for kill(); WebSockets are in wsServer.clients. */
  private readonly sockets = new Set<net.Socket>();
  private killed = false;
  private deliveryEndpoint = '';

  constructor(private readonly options: ListenerOptions) {
    this.limits = { ...defaultLimits, ...options.limits };
    // Once killed, nothing more reaches the handler (what was already handed to it still runs, as a Lambda would).
    this.sink = { invoke: (event) => (this.killed ? Promise.resolve() : options.sink.invoke(event)) };
    this.tcpServer = net.createServer({ noDelay: true }, (socket) => this.acceptTcp(socket));
    // A TLS handshake that never finishes is held no longer than a CONNECT that never comes.
    this.tlsServer = options.tls
      ? tls.createServer({ cert: options.tls.cert, key: options.tls.key, handshakeTimeout: this.limits.connectTimeoutMs }, (socket) => this.acceptTcp(socket))
      : undefined;
    this.tlsServer?.on('tlsClientError', (error) => options.log.info('TLS handshake failed', { error: error.message }));
    this.wsHttpServer = http.createServer((_request, response) => response.writeHead(426).end('MQTT over WebSocket: use path /mqtt\n'));
    this.wsServer = new WebSocketServer({
      server: this.wsHttpServer,
      path: '/mqtt',
      // Room for more than one packet, so that the framer sees an oversized packet's header and
      // a 5.0 client is told 0x95 rather than having its WebSocket closed with 1009.
      maxPayload: 2 * this.limits.maximumPacketSize,
      // [MQTT-6.0.0-3]/[MQTT-6.0.0-4]: the subprotocol is "mqtt" (or "mqttv3.1" for old clients)
      handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
    });
    this.wsServer.on('connection', (ws, request) => this.acceptWebSocket(ws, request.socket.remoteAddress ?? ''));
    this.deliveryServer = createDeliveryServer((id) => this.connections.get(id));
  }

  async start(): Promise<ListenerAddresses> {
    const { host } = this.options;
    const deliveryPort = await listen(this.deliveryServer, this.options.deliveryPort, host, 'delivery endpoint');
    this.deliveryEndpoint = `http://${this.options.advertisedHost}:${deliveryPort}`;
    const mqttPort = await listen(this.tcpServer, this.options.mqttPort, host, 'MQTT');
    const wsPort = await listen(this.wsHttpServer, this.options.wsPort, host, 'MQTT over WebSocket');
    const mqttsPort = this.tlsServer ? await listen(this.tlsServer, this.options.tls!.port, host, 'MQTT over TLS') : undefined;
    return { mqttPort, wsPort, ...(mqttsPort !== undefined ? { mqttsPort } : {}), deliveryEndpoint: this.deliveryEndpoint };
  }

  /**
   * Refuse new connections, tell every client the server is going (5.0 clients hear DISCONNECT
   * 0x8B, see ClientConnection.shutdown) so it reconnects elsewhere, and wait (up to `drainMs`)
   * until the handler has finished with each connection, so whatever stops next (DynamoDB, in
   * the local harness; the task, on Fargate) is not pulled from under it.
   */
  async stop(drainMs = 5_000): Promise<void> {
    const serversClosed = Promise.all([close(this.tcpServer), close(this.wsHttpServer), ...(this.tlsServer ? [close(this.tlsServer)] : [])]);
    for (const connection of this.connections.values()) connection.shutdown();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.unfinished].map((connection) => connection.done)),
      new Promise((resolve) => (timer = setTimeout(resolve, drainMs))),
    ]);
    clearTimeout(timer);
    for (const client of this.wsServer.clients) client.terminate();
    await serversClosed;
    await close(this.deliveryServer);
  }

  /**
   * What SIGKILL does to a task, for the chaos tests: every socket and the delivery endpoint gone
   * at once, and no close reported to the handler (a killed process reports nothing; the sweeper
   * later finds these connections gone, since their delivery endpoint no longer answers).
   */
  async kill(): Promise<void> {
    this.killed = true;
    for (const socket of this.sockets) socket.destroy();
    for (const client of this.wsServer.clients) client.terminate();
    for (const server of [this.wsHttpServer, this.deliveryServer]) server.closeAllConnections();
    await Promise.all([this.tcpServer, this.wsHttpServer, this.deliveryServer, ...(this.tlsServer ? [this.tlsServer] : [])].map(close));
  }

  private acceptTcp(socket: net.Socket): void {
    socket.setNoDelay(true);
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    const connection = this.register({
      write: (bytes) => socket.write(bytes),
      close: (lastBytes) => {
        if (!lastBytes) return void socket.destroy();
        // FIN after the bytes; a client that never closes its side is cut off a little later.
        socket.end(lastBytes);
        setTimeout(() => socket.destroy(), GRACEFUL_CLOSE_MS).unref();
      },
      remoteAddress: socket.remoteAddress ?? '',
      pause: () => socket.pause(),
      resume: () => socket.resume(),
    });
    socket.on('data', (chunk: Buffer) => connection.receive(chunk));
    socket.on('error', (error) => this.options.log.info('socket error', { connectionId: connection.connectionId, error: error.message }));
    socket.on('close', () => connection.networkClosedBy('socket closed'));
  }

  private acceptWebSocket(ws: WebSocket, remoteAddress: string): void {
    const connection = this.register({
      write: (bytes) => ws.send(bytes, { binary: true }),
      close: (lastBytes) => {
        if (!lastBytes) return ws.terminate();
        ws.send(lastBytes, { binary: true });
        ws.close(1001); // Going Away
        setTimeout(() => ws.terminate(), GRACEFUL_CLOSE_MS).unref();
      },
      remoteAddress,
      pause: () => ws.pause(),
      resume: () => ws.resume(),
    });
    ws.on('message', (data, isBinary) => {
      // [MQTT-6.0.0-1] MQTT travels in binary frames; anything else closes the connection
      if (!isBinary) return connection.serverClose('text frame on MQTT over WebSocket');
      connection.receive(Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer));
    });
    ws.on('error', (error) => this.options.log.info('websocket error', { connectionId: connection.connectionId, error: error.message }));
    ws.on('close', () => connection.networkClosedBy('websocket closed'));
  }

  private register(transport: Transport): ClientConnection {
    const connection = new ClientConnection(
      newListenerConnectionId(this.deliveryEndpoint),
      transport,
      this.sink,
      this.limits,
      this.options.log,
      (gone) => this.connections.delete(gone.connectionId),
    );
    this.connections.set(connection.connectionId, connection);
    this.unfinished.add(connection);
    void connection.done.then(() => this.unfinished.delete(connection));
    return connection;
  }
}

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

function close(server: net.Server | http.Server | tls.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

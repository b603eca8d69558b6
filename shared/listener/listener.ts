/**
 * The device door: MQTT over TCP and MQTT over WebSocket (binary frames, path /mqtt), plus the
 * delivery endpoint through which handlers write to these connections. Holds sockets and
 * nothing else: every packet goes to the packet handler.
 *
 * Every device socket is admitted before anything else happens to it: a place on the task
 * (`maxConnections`), then, once its client address is known (from the PROXY protocol v2
 * header when `proxyProtocol` is on, as behind the NLB; else the socket's peer), a place at that
 * address (`maxConnectionsPerAddress`). A socket refused is destroyed at once, and no handler
 * is invoked for it.
 */
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import { newListenerConnectionId } from '../gateway/connection-id';
import { ClientConnection } from './client-connection';
import type { Transport } from './transport';
import { ConnectionCaps, normalizeAddress } from './connection-caps';
import { ConnectPacing } from './connect-pacing';
import { createDeliveryServer } from './delivery-endpoint';
import { EVENTS_PATH, openEventStream } from './event-stream';
import { PacketBatcher } from './batcher';
import type { PacketSink } from './events';
import { readProxyHeader } from './proxy-header-reader';
import { close, listen } from './servers';
import { TaskHeartbeat } from './task-heartbeat';
import { rawSocketOf, TlsDoor } from './tls-door';
import type { ListenerAddresses, ListenerStats } from './listener-reports';
import { defaultListenerLimits, type ListenerLimits, type ListenerOptions } from './listener-options';

export type { ListenerAddresses, ListenerStats } from './listener-reports';

export { defaultListenerLimits, type ListenerLimits, type ListenerOptions } from './listener-options';

/** Between two waves of a spread drain (stop's `spreadMs`). */
const DRAIN_WAVE_MS = 500;

/**
 * CONNECT batches of one listener task in the handler at once, by default. A clean start costs
 * at most one DynamoDB call (the session's transaction, its connect rate counted in it, shared
 * with the clean starts beside it; no record read), so 64 in flight keep fewer calls waiting on
 * DynamoDB than 32 did at three calls each.
 */
const DEFAULT_CONNECTS_IN_FLIGHT = 64;

/** How long a graceful close waits for the client to close its side before cutting it off. */
const GRACEFUL_CLOSE_MS = 2_000;

/** A WebSocket frame header from the server is at most 10 bytes (no mask). */
const WEBSOCKET_FRAME_HEADER_BYTES = 10;

export class MqttListener {
  /** Connections that can be written to, by id. */
  private readonly connections = new Map<string, ClientConnection>();
  /** Connections the handler is not finished with yet (a closed socket may still have packets in flight). */
  private readonly unfinished = new Set<ClientConnection>();
  private readonly tcpServer: net.Server;
  private readonly tlsDoor: TlsDoor | undefined;
  /** The secure WebSocket door: TLS, then the same upgrade as the WebSocket door's. */
  private readonly wssServer: tls.Server | undefined;
  /** Accepts the WebSocket door's sockets, admits them, then hands them to wsHttpServer (which does not listen itself). */
  private readonly wsTcpServer: net.Server;
  private readonly wsHttpServer: http.Server;
  private readonly wsServer: WebSocketServer;
  private readonly deliveryServer: http.Server;
  private readonly limits: ListenerLimits;
  private readonly sink: PacketSink;
  /** The task's one batcher: the packets of many connections in one invocation. */
  private readonly batcher: PacketBatcher;
  /** CONNECTs paced in front of the batcher. */
  private readonly submitter: ConnectPacing;
  private readonly caps: ConnectionCaps;
  /** Every device socket, for kill(). */
  private readonly sockets = new Set<net.Socket>();
  /** Sockets not (yet) holding an MQTT over TCP connection: awaiting a PROXY header, or on the WebSocket door. */
  private readonly otherSockets = new Set<net.Socket>();
  /** The client address of each WebSocket door socket, as admitted. */
  private readonly clientAddresses = new WeakMap<net.Socket, string>();
  /**
   * A WebSocket door socket must complete its upgrade within the CONNECT deadline: handed over
   * by emit('connection'), it is not one the HTTP server's own request timeouts watch.
   */
  private readonly upgradeDeadlines = new WeakMap<net.Socket, NodeJS.Timeout>();
  private readonly heartbeat: TaskHeartbeat;
  private killed = false;
  private deliveryEndpoint = '';
  private peakOutboundBytes = 0;
  private slowReadersClosed = 0;
  private readonly refused = { task: 0, address: 0, proxyHeader: 0 };

  constructor(private readonly options: ListenerOptions) {
    this.limits = { ...defaultListenerLimits, ...options.limits };
    this.caps = new ConnectionCaps(this.limits);
    // Once killed, nothing more reaches the handler (what was already handed to it still runs, as a Lambda would).
    this.sink = { invoke: (event) => (this.killed ? Promise.resolve() : options.sink.invoke(event)) };
    // CONNECTs paced (a storm waits its turn in order); other connections' packets are never held.
    this.batcher = new PacketBatcher(this.sink, this.limits, options.log);
    this.submitter = new ConnectPacing(this.batcher, options.connectsInFlight ?? DEFAULT_CONNECTS_IN_FLIGHT);
    this.tcpServer = net.createServer({ noDelay: true }, (socket) => this.admit(socket, 'MQTT', (address) => this.acceptTcp(socket, address)));
    const { tls: tlsOptions } = options;
    this.tlsDoor = tlsOptions
      ? new TlsDoor(
          { cert: tlsOptions.cert, key: tlsOptions.key, handshakeTimeoutMs: this.limits.connectTimeoutMs, ...(tlsOptions.clientCertificates ? { clientCertificates: tlsOptions.clientCertificates } : {}) },
          (socket) => this.admit(socket, 'MQTT over TLS', (address) => this.tlsDoor!.handshake(socket, address)),
          (socket, address, identity) => this.acceptTcp(socket, address, identity),
          options.log,
        )
      : undefined;
    this.wsTcpServer = net.createServer({ noDelay: true }, (socket) => this.admit(socket, 'MQTT over WebSocket', (address) => this.upgradeWebSocket(socket, address)));
    this.wssServer =
      options.tls?.wssPort !== undefined
        ? tls.createServer({ cert: options.tls.cert, key: options.tls.key, handshakeTimeout: this.limits.connectTimeoutMs }, (socket) =>
            this.admit(socket, 'MQTT over secure WebSocket', (address) => this.upgradeWebSocket(socket, address)),
          )
        : undefined;
    this.wssServer?.on('tlsClientError', (error) => options.log.info('TLS handshake failed', { door: 'MQTT over secure WebSocket', error: error.message }));
    // Besides the upgrade to /mqtt, the WebSocket port serves server-sent events (event-stream.ts).
    this.wsHttpServer = http.createServer((request, response) => {
      if (request.method !== 'GET' || new URL(request.url ?? '/', 'http://listener').pathname !== EVENTS_PATH) return void response.writeHead(426).end('MQTT over WebSocket: use path /mqtt\n');
      // Now a connection of its own, as an upgraded socket is (acceptWebSocket).
      clearTimeout(this.upgradeDeadlines.get(request.socket));
      this.otherSockets.delete(request.socket);
      this.serveEventStream(request, response, this.clientAddresses.get(request.socket) ?? normalizeAddress(request.socket.remoteAddress ?? ''));
    });
    this.wsServer = new WebSocketServer({
      server: this.wsHttpServer,
      path: '/mqtt',
      // Room for more than one packet, so that the framer sees an oversized packet's header and
      // a 5.0 client is told 0x95 rather than having its WebSocket closed with 1009.
      maxPayload: 2 * this.limits.maximumPacketSize,
      // [MQTT-6.0.0-3]/[MQTT-6.0.0-4]: the subprotocol is "mqtt" (or "mqttv3.1" for old clients)
      handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
    });
    this.wsServer.on('connection', (ws, request) =>
      this.acceptWebSocket(ws, request.socket, this.clientAddresses.get(request.socket) ?? normalizeAddress(request.socket.remoteAddress ?? '')),
    );
    this.deliveryServer = createDeliveryServer((id) => this.connections.get(id), { secret: options.deliverySecret });
    this.heartbeat = new TaskHeartbeat(this.sink, options.log, options.heartbeatMs);
  }

  /** A server-sent events stream: a connection of this task, whose MQTT the listener speaks for the client (event-stream.ts). */
  serveEventStream(request: http.IncomingMessage, response: http.ServerResponse, remoteAddress: string): void {
    openEventStream(request, response, { remoteAddress, ...(this.options.eventHeartbeatMs ? { heartbeatMs: this.options.eventHeartbeatMs } : {}) }, (transport) => this.register(transport));
  }

  stats(): ListenerStats {
    let peak = this.peakOutboundBytes;
    for (const connection of this.connections.values()) peak = Math.max(peak, connection.peakOutboundBytes);
    return {
      openSockets: this.caps.open,
      peakOutboundBytes: peak,
      slowReadersClosed: this.slowReadersClosed,
      refused: { ...this.refused },
      batches: this.batcher.stats(),
    };
  }

  async start(): Promise<ListenerAddresses> {
    const { host } = this.options;
    const deliveryPort = await listen(this.deliveryServer, this.options.deliveryPort, host, 'delivery endpoint');
    this.deliveryEndpoint = `http://${this.options.advertisedHost}:${deliveryPort}`;
    this.heartbeat.start(this.deliveryEndpoint);
    const mqttPort = await listen(this.tcpServer, this.options.mqttPort, host, 'MQTT');
    const wsPort = await listen(this.wsTcpServer, this.options.wsPort, host, 'MQTT over WebSocket');
    const mqttsPort = this.tlsDoor ? await listen(this.tlsDoor.server, this.options.tls!.port, host, 'MQTT over TLS') : undefined;
    const wssPort = this.wssServer ? await listen(this.wssServer, this.options.tls!.wssPort!, host, 'MQTT over secure WebSocket') : undefined;
    return {
      mqttPort,
      wsPort,
      ...(mqttsPort !== undefined ? { mqttsPort } : {}),
      ...(wssPort !== undefined ? { wssPort } : {}),
      deliveryEndpoint: this.deliveryEndpoint,
    };
  }

  /**
   * Refuse new connections, tell every client the server is going (5.0 clients hear DISCONNECT
   * 0x8B, see ClientConnection.shutdown) so it reconnects elsewhere, and wait (up to `drainMs`
   * in all) until the handler has finished with each connection, so whatever stops next
   * (DynamoDB, in the local harness; the task, on Fargate) is not pulled from under it. With
   * `spreadMs`, the connections are told in waves, one every DRAIN_WAVE_MS, spread over that
   * time: a task's 25,000 clients reconnect to the other tasks over a minute, not in one second,
   * and their closes reach the handler at the same pace.
   */
  async stop(drainMs = 5_000, spreadMs = 0): Promise<void> {
    const deadline = Date.now() + drainMs;
    this.heartbeat.stop();
    const serversClosed = Promise.all([close(this.tcpServer), close(this.wsTcpServer), ...this.tlsServers().map(close)]);
    const connections = [...this.connections.values()];
    const waves = Math.max(1, Math.min(connections.length, Math.floor(Math.min(spreadMs, drainMs) / DRAIN_WAVE_MS) + 1));
    const perWave = Math.ceil(connections.length / waves);
    for (let first = 0; first < connections.length; first += perWave) {
      if (first > 0) await new Promise((resolve) => setTimeout(resolve, DRAIN_WAVE_MS));
      for (const connection of connections.slice(first, first + perWave)) connection.shutdown();
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.unfinished].map((connection) => connection.done)),
      new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now())))),
    ]);
    clearTimeout(timer);
    for (const client of this.wsServer.clients) client.terminate();
    // Plain HTTP requests on the WebSocket port, sockets still owing their PROXY header.
    for (const socket of this.otherSockets) socket.destroy();
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
    this.heartbeat.stop();
    for (const socket of this.sockets) socket.destroy();
    for (const client of this.wsServer.clients) client.terminate();
    this.deliveryServer.closeAllConnections();
    await Promise.all([this.tcpServer, this.wsTcpServer, this.deliveryServer, ...this.tlsServers()].map(close));
  }

  /**
   * A new device socket: a place on the task, its client address (after the PROXY header, when
   * required), a place at that address; then `accepted`. Refused: destroyed at once, one line logged.
   */
  private admit(socket: net.Socket, door: string, accepted: (address: string) => void): void {
    const refuse = (why: keyof typeof this.refused, fields: Record<string, unknown>): void => {
      this.refused[why]++;
      this.options.log.warn('connection refused', { door, why, ...fields });
      socket.destroy();
    };
    socket.on('error', (error) => this.options.log.info('socket error', { door, error: error.message }));
    if (!this.caps.enterTask()) return refuse('task', { maxConnections: this.limits.maxConnections });
    this.sockets.add(socket);
    let address: string | undefined;
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.otherSockets.delete(socket);
      this.caps.leave(address);
    });
    const withAddress = (clientAddress: string): void => {
      if (socket.destroyed) return;
      if (!this.caps.enterAddress(clientAddress)) {
        return refuse('address', { address: clientAddress, maxConnectionsPerAddress: this.limits.maxConnectionsPerAddress });
      }
      address = clientAddress;
      accepted(clientAddress);
    };
    if (!this.options.proxyProtocol || socket instanceof tls.TLSSocket) return withAddress(normalizeAddress(socket.remoteAddress ?? ''));
    this.otherSockets.add(socket);
    readProxyHeader(socket, this.limits.connectTimeoutMs).then(
      (clientAddress) => {
        if (clientAddress === undefined) return; // closed without a byte: nothing to refuse
        this.otherSockets.delete(socket);
        withAddress(normalizeAddress(clientAddress));
        socket.resume();
      },
      (error: Error) => refuse('proxyHeader', { peer: socket.remoteAddress, error: error.message }),
    );
  }

  /** `certificateUser`: the identity of the client's verified certificate (tls-door.ts), the connection's user name. */
  private acceptTcp(socket: net.Socket, remoteAddress: string, certificateUser?: string): void {
    socket.setNoDelay(true);
    const connection = this.register({
      write: (bytes) => socket.write(bytes),
      bufferedBytes: () => socket.writableLength,
      framingBytes: 0,
      close: (lastBytes) => {
        if (!lastBytes) return void socket.destroy();
        // FIN after the bytes; a client that never closes its side is cut off a little later.
        socket.end(lastBytes);
        setTimeout(() => socket.destroy(), GRACEFUL_CLOSE_MS).unref();
      },
      abort: () => resetAndDestroy(socket),
      remoteAddress,
      ...(certificateUser !== undefined ? { certificateUser } : {}),
      pause: () => socket.pause(),
      resume: () => socket.resume(),
    });
    socket.on('data', (chunk: Buffer) => connection.receive(chunk));
    socket.on('close', () => connection.networkClosedBy('socket closed'));
  }

  private tlsServers(): net.Server[] {
    return [this.tlsDoor?.server, this.wssServer].filter((server) => server !== undefined);
  }

  /** A WebSocket door socket (plain or after TLS), admitted: its upgrade, within the CONNECT deadline. */
  private upgradeWebSocket(socket: net.Socket, address: string): void {
    this.clientAddresses.set(socket, address);
    this.otherSockets.add(socket);
    const deadline = setTimeout(() => socket.destroy(), this.limits.connectTimeoutMs);
    this.upgradeDeadlines.set(socket, deadline);
    socket.once('close', () => clearTimeout(deadline));
    this.wsHttpServer.emit('connection', socket);
  }

  private acceptWebSocket(ws: WebSocket, socket: net.Socket, remoteAddress: string): void {
    // Now an MQTT connection, under its own CONNECT deadline; stop() closes it with its goodbye, not with the other sockets.
    clearTimeout(this.upgradeDeadlines.get(socket));
    this.otherSockets.delete(socket);
    const connection = this.register({
      write: (bytes) => ws.send(bytes, { binary: true }),
      bufferedBytes: () => ws.bufferedAmount,
      framingBytes: WEBSOCKET_FRAME_HEADER_BYTES,
      close: (lastBytes) => {
        if (!lastBytes) return ws.terminate();
        ws.send(lastBytes, { binary: true });
        ws.close(1001); // Going Away
        setTimeout(() => ws.terminate(), GRACEFUL_CLOSE_MS).unref();
      },
      abort: () => resetAndDestroy(socket),
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
      (gone) => {
        this.connections.delete(gone.connectionId);
        this.peakOutboundBytes = Math.max(this.peakOutboundBytes, gone.peakOutboundBytes);
        if (gone.closedAsSlowReader) this.slowReadersClosed++;
      },
      this.submitter,
    );
    this.connections.set(connection.connectionId, connection);
    this.unfinished.add(connection);
    void connection.done.then(() => this.unfinished.delete(connection));
    return connection;
  }
}

/** A TCP reset: the kernel drops what it has not sent instead of holding it for a client that does not read. */
function resetAndDestroy(socket: net.Socket): void {
  if (socket.destroyed) return;
  // A TLS socket's handle is not TCP's: the TCP socket under it is reset (rawSocketOf, tls-door.ts).
  const tcp = socket instanceof tls.TLSSocket ? rawSocketOf(socket) : socket;
  if (tcp instanceof tls.TLSSocket || tcp.destroyed) socket.destroy();
  else {
    tcp.resetAndDestroy();
    socket.destroy();
  }
}

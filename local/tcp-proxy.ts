/**
 * A TCP proxy on a loopback port in front of a server (DynamoDB Local, in the fault tests), that a
 * test can cut and restore. `refuse`: open sockets are reset and new connections refused, as when
 * the server is down; `blackhole`: connections are accepted and bytes swallowed, as when the network
 * drops packets. Restoring listens again on the same port, so clients keep their endpoint.
 */
import net from 'node:net';

export type CutMode = 'refuse' | 'blackhole';

export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private mode: 'open' | CutMode = 'open';
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    await this.listen();
    return this;
  }

  /** Cut the link to the server. */
  async cut(mode: CutMode): Promise<void> {
    this.mode = mode;
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
    if (mode === 'refuse') await this.close();
  }

  async restore(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.mode = 'open';
    if (!this.server) await this.listen();
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await this.close();
  }

  private listen(): Promise<void> {
    const server = net.createServer((client) => this.accept(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        this.port = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  private close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    return new Promise((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }

  private accept(client: net.Socket): void {
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.on('error', () => undefined);
    if (this.mode === 'blackhole') {
      client.resume(); // read and drop, never answer
      return;
    }
    const upstream = net.connect(this.targetPort, this.targetHost);
    this.sockets.add(upstream);
    upstream.on('close', () => {
      this.sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => undefined);
    client.on('close', () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

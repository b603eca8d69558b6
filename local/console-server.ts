/**
 * Serves the web console (web/console/) and the browser adapter, bundled with esbuild when the
 * server starts:
 *   GET /              the console page
 *   GET /console.js    the console with stock MQTT.js and the adapter, one ES module
 *   GET /adapter.js    the adapter alone, an ES module for your own pages
 *   GET /config.json   where the API Gateway WebSocket is
 *   GET /stats.json    the broker's figures (as the $SYS/broker/ topics carry them) and the counts not flushed yet
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { build } from 'esbuild';
import { listen } from '../shared/listener/servers';

const WEB = path.resolve(import.meta.dirname, '../web');

export interface ConsoleServerOptions {
  readonly host: string;
  readonly port: number;
  /** The API Gateway WebSocket the console connects to by default. */
  readonly apiGatewayUrl: string;
  /** The broker's figures, read at each request of /stats.json. */
  readonly stats?: () => Promise<unknown>;
}

export class ConsoleServer {
  private readonly server: http.Server;
  private files = new Map<string, { type: string; body: string }>();

  constructor(private readonly options: ConsoleServerOptions) {
    this.server = http.createServer((request, response) => {
      const url = (request.url ?? '/').split('?')[0]!;
      if (url === '/stats.json' && request.method === 'GET' && this.options.stats) return void this.serveStats(response);
      const file = this.files.get(url);
      if (!file || request.method !== 'GET') return void response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      response.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(file.body);
    });
  }

  async start(): Promise<string> {
    const [page, consoleJs, adapterJs] = await Promise.all([
      readFile(path.join(WEB, 'console/index.html'), 'utf8'),
      bundle(path.join(WEB, 'console/main.ts')),
      bundle(path.join(WEB, 'adapter.ts')),
    ]);
    const js = 'text/javascript; charset=utf-8';
    this.files = new Map([
      ['/', { type: 'text/html; charset=utf-8', body: page }],
      ['/console.js', { type: js, body: consoleJs }],
      ['/adapter.js', { type: js, body: adapterJs }],
      ['/config.json', { type: 'application/json', body: JSON.stringify({ apiGatewayUrl: this.options.apiGatewayUrl }) }],
    ]);
    const port = await listen(this.server, this.options.port, this.options.host, 'web console');
    return `http://${this.options.host}:${port}`;
  }

  private async serveStats(response: http.ServerResponse): Promise<void> {
    try {
      const body = JSON.stringify(await this.options.stats!());
      response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body);
    } catch (error) {
      response.writeHead(503, { 'content-type': 'text/plain' }).end(`figures unavailable: ${String(error)}\n`);
    }
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function bundle(entry: string): Promise<string> {
  const result = await build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', write: false, logLevel: 'silent' });
  return result.outputFiles[0]!.text;
}

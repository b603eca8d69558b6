/**
 * What a listener task (listener.ts) is started with: its ports and addresses, its port to the
 * packet handler, TLS, and the limits it holds every connection to, with their defaults.
 */
import { defaultBrokerConfig } from '../broker/context';
import type { Logger } from '../broker/ports';
import { defaultDoorOptions } from '../gateway/door-limits';
import { defaultBatcherLimits, type BatcherLimits } from './batcher';
import type { ClientCertificateOptions } from './client-certificate';
import type { ConnectionCapLimits } from './connection-caps';
import type { PacketSink } from './events';

export interface ConnectionLimits {
  readonly maximumPacketSize: number;
  readonly connectTimeoutMs: number;
  /** Most packets of one connection handed to one invocation. */
  readonly maxBatchPackets: number;
  /** The longest keep-alive this door carries (seconds); the listener's DoorOptions.keepAliveLimit (shared/gateway/door-limits.ts). */
  readonly keepAliveLimit: number;
  /** The broker's maximum keep-alive (seconds, MQTT_MAX_KEEPALIVE), which 3.1.1 clients are held to as well. */
  readonly maxKeepAlive?: number;
  /** Bytes of framed packets waiting for the handler before the listener stops reading the socket. */
  readonly maxQueuedBytes: number;
  /** Bytes written to the client and not yet taken by the network; a write that would pass it closes the connection. */
  readonly maxOutboundBytes: number;
  /** Largest first packet (the CONNECT): what a socket may hold before anyone is authenticated. */
  readonly maxConnectPacketSize: number;
}

export type ListenerLimits = ConnectionLimits & ConnectionCapLimits & BatcherLimits;

export interface ListenerOptions {
  readonly host: string;
  readonly mqttPort: number;
  readonly wsPort: number;
  readonly deliveryPort: number;
  /** The host handlers use to reach the delivery endpoint (the task's private address in the cloud). */
  readonly advertisedHost: string;
  /** The secret the delivery endpoint's requests are signed with (shared/gateway/delivery-signature.ts). */
  readonly deliverySecret: string;
  readonly sink: PacketSink;
  readonly log: Logger;
  readonly limits?: Partial<ListenerLimits>;
  /** CONNECT batches handed to the handler at once; more wait their turn, in order (see connect-pacing.ts). Default 64. */
  readonly connectsInFlight?: number;
  /**
   * Every socket on the MQTT and MQTT over WebSocket ports begins with a PROXY protocol v2
   * header (a Network Load Balancer's target group with proxy_protocol_v2 on); one that does not
   * is closed. So does every socket on the TLS port (before its handshake: the NLB passes TLS
   * through when devices present certificates), not the secure WebSocket port (local only).
   */
  readonly proxyProtocol?: boolean;
  /**
   * MQTT over TLS (mqtts) on its own port, with this certificate and key (PEM); with `wssPort`,
   * MQTT over WebSocket over TLS (wss, path /mqtt) too, with the same certificate. With
   * `clientCertificates`, the mqtts port admits only devices with a certificate from that CA,
   * whose identity is their user name (tls-door.ts); the wss port asks for none.
   */
  readonly tls?: {
    readonly port: number;
    readonly wssPort?: number;
    readonly cert: string;
    readonly key: string;
    readonly clientCertificates?: ClientCertificateOptions;
  };
  /** How often a server-sent events stream carries a heartbeat comment (event-stream.ts; 20 s by default). */
  readonly eventHeartbeatMs?: number;
  /** How often the task registers itself for the sweeper (task-heartbeat.ts; a minute by default). */
  readonly heartbeatMs?: number;
}

export const defaultListenerLimits: ListenerLimits = {
  maximumPacketSize: defaultBrokerConfig.maximumPacketSize,
  connectTimeoutMs: 10_000,
  maxBatchPackets: 100,
  keepAliveLimit: defaultDoorOptions.keepAliveLimit.listener,
  maxQueuedBytes: 1024 * 1024,
  maxOutboundBytes: 4 * 1024 * 1024,
  maxConnectPacketSize: 64 * 1024,
  maxConnections: 50_000,
  maxConnectionsPerAddress: 1_000,
  ...defaultBatcherLimits,
};

import net from 'node:net';
import { MqttClient, type IClientOptions } from 'mqtt';

/** A v2 PROXY header for TCP over IPv4 from `source`:40000 to 10.0.0.1:1883, as the NLB sends it. */
export function proxyHeader(source: string): Buffer {
  const header = Buffer.alloc(28);
  Buffer.from('0d0a0d0a000d0a515549540a', 'hex').copy(header);
  header.set([0x21, 0x11, 0, 12], 12); // version 2 PROXY; INET STREAM; 12 bytes of addresses
  header.set(source.split('.').map(Number), 16);
  header.set([10, 0, 0, 1], 20);
  header.writeUInt16BE(40000, 24);
  header.writeUInt16BE(1883, 26);
  return header;
}

/** MQTT.js (not yet connected) over a TCP socket to `port` that sends a PROXY header from `source` before MQTT. */
export function clientBehindProxy(port: number, source: string, options: IClientOptions): MqttClient {
  return new MqttClient(() => {
    const socket = net.connect(port, '127.0.0.1');
    socket.write(proxyHeader(source));
    return socket;
  }, options);
}

/** Every packet type's handler, one small file each; the compiler checks the table covers them all. */
import type { Packet } from '../protocol/codec';
import { MqttProtocolError, ReasonCode } from '../protocol/reason-codes';
import type { Action } from './actions';
import { handleAuth } from './auth';
import { handleConnect } from './connect';
import { afterConnect, type PacketContext, type PacketHandler } from './context';
import { handleDisconnect } from './disconnect';
import { handlePingreq } from './pingreq';
import { handlePuback } from './puback';
import { handlePubcomp } from './pubcomp';
import { handlePublish } from './publish';
import { handlePubrec } from './pubrec';
import { handlePubrel } from './pubrel';
import { handleSubscribe } from './subscribe';
import { handleUnsubscribe } from './unsubscribe';

type Handlers = { readonly [C in Packet['cmd']]: PacketHandler<Extract<Packet, { cmd: C }>> };

const sentOnlyByServers = afterConnect<Packet>(async (_ctx, packet) => {
  throw new MqttProtocolError(ReasonCode.ProtocolError, `${packet.cmd} is sent only by servers`);
});

const handlers: Handlers = {
  connect: handleConnect,
  publish: handlePublish,
  puback: handlePuback,
  pubrec: handlePubrec,
  pubrel: handlePubrel,
  pubcomp: handlePubcomp,
  subscribe: handleSubscribe,
  unsubscribe: handleUnsubscribe,
  pingreq: handlePingreq,
  disconnect: handleDisconnect,
  auth: handleAuth,
  connack: sentOnlyByServers,
  suback: sentOnlyByServers,
  unsuback: sentOnlyByServers,
  pingresp: sentOnlyByServers,
};

/** The packet, to its type's handler: what must happen, for the dispatcher. */
export function handlePacket(ctx: PacketContext, packet: Packet): Promise<Action[]> {
  // The table pairs each cmd with its packet's handler; the compiler cannot follow the pairing through the lookup.
  const handler = handlers[packet.cmd] as PacketHandler<Packet>;
  return handler(ctx, packet);
}

import type { AuthPacket } from '../protocol/codec';
import { MqttProtocolError, ReasonCode } from '../protocol/reason-codes';
import { afterConnect } from './context';

/** No enhanced authentication method is offered, so AUTH is a protocol error ([MQTT-4.12.0-1]). */
export const handleAuth = afterConnect<AuthPacket>(async () => {
  throw new MqttProtocolError(ReasonCode.ProtocolError, 'AUTH without an authentication method');
});

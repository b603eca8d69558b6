/**
 * The HTTP status of an MQTT refusal, for the HTTP doors (publish, server-sent events): what a
 * CONNACK, PUBACK or SUBACK reason code would have told an MQTT client.
 */
import { ReasonCode } from '../protocol/reason-codes';

/** A refused authentication (a CONNACK reason code): 401 but for a limit or an outage. */
export function authenticationStatus(reasonCode: number): number {
  switch (reasonCode) {
    case ReasonCode.ConnectionRateExceeded:
      return 429;
    case ReasonCode.ServerUnavailable:
    case ReasonCode.ServerBusy:
      return 503;
    default:
      return 401;
  }
}

/** A refused publish or subscription (a PUBACK or SUBACK reason code). */
export function refusalStatus(reasonCode: number): number {
  switch (reasonCode) {
    case ReasonCode.NotAuthorized:
      return 403;
    case ReasonCode.QuotaExceeded:
      return 429;
    case ReasonCode.ServerUnavailable:
    case ReasonCode.ServerBusy:
      return 503;
    default:
      return 400;
  }
}

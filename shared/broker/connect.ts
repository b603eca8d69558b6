/**
 * CONNECT: steps over one shared state, in order. A step that refuses the connection (CONNACK
 * with the reason code, then close) ends the list.
 *   chooseClientId -> checkWill -> admit -> describeConnection -> openSession -> closeTakenOver
 *     -> settlePendingWill -> reauthorizeSubscriptions -> rememberConnection -> connack
 *     -> resendInFlight -> drainQueue
 * A clean start for a client id with no session (a new device, or one whose last session ended
 * with its connection) takes the short way: openSession writes the new session and the connection's record
 * in one call, and every step after it has nothing to do in the store (nothing to take over,
 * settle, reauthorize, resend or drain).
 * Otherwise, from openSession's claim until drainQueue's action is done, deliveries to this client
 * are held back (queued): the client hears CONNACK first [MQTT-3.2.0-1], then what was in flight
 * again, in order [MQTT-4.4.0-1], then its queue, all sent before the hold is released, so nothing
 * new overtakes them.
 */
import { randomUUID } from 'node:crypto';
import type { ConnectPacket, ProtocolVersion } from '../protocol/codec';
import { MqttProtocolError, ReasonCode } from '../protocol/reason-codes';
import { checkTopicName } from '../protocol/topic';
import { close, closeWithReason, connected, drain, PartlyHandled, send, type Action } from './actions';
import { admitConnection, connectRateCharge, connectRateRefusal } from './admission';
import { connackPacket } from './connack';
import { clientLimits, sessionExpiryOf, willOf, type ClientLimits } from './connect-request';
import { selfRecipient, type BrokerDeps, type PacketHandler } from './context';
import { inFlightResends } from './drain';
import { heldKeepAlive, keepAliveCeiling, serverKeepAlive } from './keep-alive';
import { connectHold, StoreUnavailableError, type ConnectionRecord, type Identity, type OpenSessionResult } from './ports';
import { publishWill } from './will';
import { reauthorizeSession } from './reauthorize';
import { takeOver } from './takeover';
import { LEASES } from './leases';

/** What the steps learn and decide, in the order they run. */
interface ConnectState {
  readonly deps: BrokerDeps;
  readonly connectionId: string;
  readonly sourceAddress: string | undefined;
  readonly certificateUser: string | undefined;
  readonly packet: ConnectPacket;
  readonly version: ProtocolVersion;
  readonly cleanStart: boolean;
  clientId?: string;
  limits?: ClientLimits;
  identity?: Identity;
  session?: OpenSessionResult;
  /** The 5.0 Server Keep Alive the client is told, if any. */
  serverKeepAlive?: number;
  connection?: ConnectionRecord;
  /** What must happen, in order: the handler's result. */
  readonly actions: Action[];
  /** Refused or closed: no step runs after this one. */
  done: boolean;
}

type ConnectStep = (state: ConnectState) => void | Promise<void>;

const steps: readonly ConnectStep[] = [
  chooseClientId,
  checkWill,
  admit,
  describeConnection,
  openSession,
  closeTakenOver,
  settlePendingWill,
  reauthorizeSubscriptions,
  rememberConnection,
  connack,
  resendInFlight,
  drainQueue,
];

export const handleConnect: PacketHandler<ConnectPacket> = async (ctx, packet) => {
  // [MQTT-3.1.0-2] a second CONNECT is a protocol error
  if (ctx.connection) throw new MqttProtocolError(ReasonCode.ProtocolError, 'second CONNECT');
  const state: ConnectState = {
    deps: ctx.deps,
    connectionId: ctx.connectionId,
    sourceAddress: ctx.sourceAddress,
    certificateUser: ctx.certificateUser,
    packet,
    version: (packet.protocolVersion ?? 4) as ProtocolVersion,
    cleanStart: packet.clean ?? true,
    actions: [],
    done: false,
  };
  for (const step of steps) {
    try {
      await step(state);
    } catch (error) {
      // The connections this CONNECT took the session from are closed all the same.
      if (state.actions.length === 0) throw error;
      throw new PartlyHandled(state.actions, error);
    }
    if (state.done) break;
  }
  return state.actions;
};

function chooseClientId(state: ConnectState): void {
  const { packet, version, cleanStart } = state;
  if (packet.clientId.length > 0) state.clientId = packet.clientId;
  // [MQTT-3.1.3-6] the server may assign an id to a client that sent none
  else if (version === 5 || (version === 4 && cleanStart)) state.clientId = `auto-${randomUUID()}`;
  // [MQTT-3.1.3-8] (3.1.1) an empty client id with clean session 0 is rejected with 0x02
  else refuse(state, ReasonCode.ClientIdentifierNotValid, 'empty client id needs clean start');
}

/** The will topic is a topic name like any other; 3.1.1 has no CONNACK code for it, so it just closes. */
function checkWill(state: ConnectState): void {
  const will = state.packet.will;
  const topic = will ? checkTopicName(will.topic) : { ok: true as const };
  if (topic.ok) return;
  if (state.version !== 5) throw new MqttProtocolError(ReasonCode.TopicNameInvalid, `will ${topic.reason}`);
  refuse(state, ReasonCode.TopicNameInvalid, `will ${topic.reason}`);
}

/** [MQTT-3.1.4-2] (5.0) authentication and authorization checks; a failure refuses with CONNACK and closes. */
async function admit(state: ConnectState): Promise<void> {
  state.limits = clientLimits(state.packet, state.version);
  const admission = await admitConnection(state.deps, state, state.packet, state.clientId!);
  if (admission.ok) state.identity = admission.identity;
  else refuse(state, admission.reasonCode, admission.why);
}

/** The connection's record, which the packets after CONNECT are handled with (written with a new session, or by rememberConnection). */
function describeConnection(state: ConnectState): void {
  const { deps, connectionId, packet, version } = state;
  const requested = packet.keepalive ?? 0;
  const doorLimit = deps.doors.keepAliveLimit(connectionId);
  // [MQTT-3.2.2-21] a 5.0 client asking for more than its door carries or the broker's maximum (or none) is told the lower
  state.serverKeepAlive = serverKeepAlive(version, requested, keepAliveCeiling(doorLimit, deps.config.maxKeepAlive));
  state.connection = {
    connectionId,
    clientId: state.clientId!,
    protocolVersion: version,
    keepalive: heldKeepAlive(version, requested, doorLimit, deps.config.maxKeepAlive),
    cleanStart: state.cleanStart,
    sessionExpiryInterval: sessionExpiryOf(packet, version, state.cleanStart, deps.config.maxSessionExpiry),
    connectedAt: deps.now(),
    ...(packet.will ? { will: willOf(packet.will, version) } : {}),
    ...state.limits!,
    ...(version === 5 ? { requestProblemInformation: packet.properties?.requestProblemInformation !== false } : {}),
    ...state.identity!,
  };
}

/**
 * Claim the session (a new one, or the one kept for this client id, if this identity owns it),
 * holding its deliveries back; a new one is written with the connection's record, holding nothing.
 */
async function openSession(state: ConnectState): Promise<void> {
  const limits = state.limits!;
  const endsWithConnection = sessionExpiryOf(state.packet, state.version, state.cleanStart) === 0;
  const rate = connectRateCharge(state.deps, state.identity!, state.clientId!);
  const opened = await state.deps.store.sessions.openSession({
    clientId: state.clientId!,
    connectionId: state.connectionId,
    ...(state.identity!.username !== undefined ? { owner: state.identity!.username } : {}),
    // Counted only when it outlives its connection: what a user holds offline (a session that ends
    // with its connection is bounded by the connections a user can hold open).
    ...(state.deps.config.maxSessionsPerUser !== undefined && !endsWithConnection ? { sessionsPerUser: state.deps.config.maxSessionsPerUser } : {}),
    protocolVersion: state.version,
    cleanStart: state.cleanStart,
    endsWithConnection,
    receiveMaximum: limits.receiveMaximum,
    topicAliasMaximum: limits.topicAliasMaximum,
    ...(limits.maximumPacketSize !== undefined ? { maximumPacketSize: limits.maximumPacketSize } : {}),
    holdMs: LEASES.deliveryHoldMs,
    // A clean start usually finds no session (one that ended with its last connection): tried the
    // short way. A client resuming usually finds one, which would make the try a wasted call.
    ...(state.cleanStart ? { connection: state.connection! } : {}),
    ...(rate ? { connectRate: rate } : {}),
  });
  // Another identity's session: refused before anything of it is touched (no takeover, no wipe,
  // no will cancelled or published). 5.0 0x85 / 3.1.1 return code 2: the id is not allowed.
  if (opened === 'owned-by-another') refuse(state, ReasonCode.ClientIdentifierNotValid, 'client id belongs to another identity');
  // The identity holds as many sessions as it may (MQTT_MAX_SESSIONS_PER_USER): 5.0 0x97 / 3.1.1 return code 3.
  else if (opened === 'quota-exceeded') refuse(state, ReasonCode.QuotaExceeded, 'sessions per user exceeded');
  // Reconnecting faster than MQTT_CONNECT_RATE: 5.0 0x9F / 3.1.1 return code 3; nothing of the session touched.
  else if (opened === 'rate-exceeded') {
    const { reasonCode, why } = connectRateRefusal(state.deps);
    refuse(state, reasonCode, why);
  }
  else state.session = opened;
}

/**
 * [MQTT-3.1.4-2] a second connection with the same client id closes the existing one; 5.0:
 * DISCONNECT 0x8E Session taken over [MQTT-3.1.4-3], never ahead of that connection's own
 * CONNACK [MQTT-3.14.0-1] (takeover.ts: then its own invocation may close it instead).
 */
async function closeTakenOver(state: ConnectState): Promise<void> {
  const { previousConnectionId, previousProtocolVersion, earlierTakenOver } = state.session!;
  const takenOver: Array<readonly [string, ProtocolVersion]> = [];
  if (previousConnectionId && previousConnectionId !== state.connectionId) takenOver.push([previousConnectionId, previousProtocolVersion ?? 4]);
  // A takeover whose CONNECT died before closing the connection it took the session from.
  if (earlierTakenOver && earlierTakenOver.connectionId !== state.connectionId && earlierTakenOver.connectionId !== previousConnectionId) {
    takenOver.push([earlierTakenOver.connectionId, earlierTakenOver.protocolVersion]);
  }
  for (const [connectionId, version] of takenOver) {
    const close = await takeOver(state.deps, connectionId, version);
    if (close) state.actions.push(close);
  }
}

/**
 * A delayed will of the previous connection: a resumed session cancels it [MQTT-3.1.3-9]; a clean
 * start ended that session, and a will is published when its session ends.
 */
async function settlePendingWill(state: ConnectState): Promise<void> {
  const { endedSessionWill, sessionPresent } = state.session!;
  if (endedSessionWill) await publishWill(state.deps, state.clientId!, endedSessionWill, `ended#${state.connectionId}`);
  else if (sessionPresent) await state.deps.store.wills.cancelWill(state.clientId!);
}

/** A resumed session's subscriptions are checked against the identity's rules now (reauthorize.ts). */
async function reauthorizeSubscriptions(state: ConnectState): Promise<void> {
  if (!state.session!.sessionPresent) return;
  await reauthorizeSession(state.deps, state.connectionId, state.clientId!, state.identity!);
}

/** The connection's record, unless openSession wrote it with the new session. */
async function rememberConnection(state: ConnectState): Promise<void> {
  const connection = state.connection!;
  if (!state.session!.created) await state.deps.store.connections.putConnection(connection);
  state.actions.push(connected(connection));
}

function connack(state: ConnectState): void {
  const { deps, connectionId, packet, version } = state;
  const connection = state.connection!;
  const { sessionPresent } = state.session!;
  const offer = {
    config: deps.config,
    maximumPacketSize: deps.doors.inboundPacketLimit(connectionId, deps.config.maximumPacketSize),
    assignedClientIdentifier: connection.clientId !== packet.clientId ? connection.clientId : undefined,
    serverKeepAlive: state.serverKeepAlive,
    responseInformation: packet.properties?.requestResponseInformation ? `response/${connection.clientId}` : undefined,
    sessionExpiryInterval: connection.sessionExpiryInterval !== (packet.properties?.sessionExpiryInterval ?? 0) ? connection.sessionExpiryInterval : undefined,
  };
  state.actions.push(send(connectionId, version, connackPacket(version, ReasonCode.Success, sessionPresent, offer)));
  deps.log.info('connected', { connectionId, clientId: connection.clientId, protocolVersion: version, cleanStart: state.cleanStart, sessionPresent, username: connection.username });
}

/** A resumed session: what was in flight goes again, before anything new [MQTT-4.4.0-1]. */
async function resendInFlight(state: ConnectState): Promise<void> {
  if (!state.session!.sessionPresent) return;
  try {
    state.actions.push(...(await inFlightResends(state.deps, { ...selfRecipient(state.connection!), connectionId: state.connectionId })));
  } catch (error) {
    // The connection was accepted (CONNACK is on its way), so it closes as an accepted one does.
    // Nothing is lost: what was in flight or queued stays so, for the client's next CONNECT.
    const busy = error instanceof StoreUnavailableError;
    state.deps.log.warn('closing connection: resuming the session failed', { connectionId: state.connectionId, clientId: state.clientId, error: String(error) });
    state.actions.push(closeWithReason(state.connectionId, state.version, busy ? ReasonCode.ServerBusy : ReasonCode.UnspecifiedError));
    state.done = true;
  }
}

/** The queue, then the hold openSession took is released (a failed drain closes the connection: the dispatcher's). A new session holds nothing and has no queue. */
function drainQueue(state: ConnectState): void {
  if (state.session!.created) return;
  state.actions.push(drain(selfRecipient(state.connection!), connectHold(state.connectionId)));
}

function refuse(state: ConnectState, reasonCode: number, why: string): void {
  const { deps, connectionId, packet, version } = state;
  deps.log.info('CONNECT refused', { connectionId, clientId: packet.clientId, reasonCode, why });
  state.actions.push(send(connectionId, version, connackPacket(version, reasonCode, false, undefined, why)), close(connectionId));
  state.done = true;
}

/**
 * A resumed session's subscriptions were granted under the rules of their time: each is checked
 * against the identity's rules now. The ones no longer allowed are dropped (and logged), and the
 * deny rules stored with the others (acl.ts, denialsFor) are brought up to date, before anything
 * is delivered on them (deliveries are held until the CONNECT's drainQueue). One Query, on resume
 * only; a write only for a subscription whose rules changed.
 */
import type { BrokerDeps } from './context';
import type { Identity, Subscription } from './ports';

export async function reauthorizeSession(deps: BrokerDeps, connectionId: string, clientId: string, identity: Identity): Promise<void> {
  const access = deps.security.access({ clientId, ...identity });
  const dropped: string[] = [];
  const changed: Subscription[] = [];
  for (const subscription of await deps.store.subscriptions.clientSubscriptions(clientId)) {
    const sent = sentFilter(subscription);
    if (!access.canSubscribe(sent)) {
      dropped.push(sent);
      continue;
    }
    const denials = access.denialsFor(sent);
    if (sameDenials(denials, subscription.denials ?? [])) continue;
    const { denials: _old, ...options } = subscription;
    changed.push({ ...options, ...(denials.length > 0 ? { denials } : {}) });
  }
  if (changed.length > 0) await deps.store.subscriptions.subscribe(clientId, changed);
  if (dropped.length === 0) return;
  await deps.store.subscriptions.unsubscribe(clientId, dropped);
  deps.log.info('resumed session: subscriptions no longer allowed were dropped', { connectionId, clientId, username: identity.username, dropped });
}

function sentFilter(subscription: Subscription): string {
  return subscription.shareGroup === undefined ? subscription.filter : `$share/${subscription.shareGroup}/${subscription.filter}`;
}

function sameDenials(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((denial, i) => denial === b[i]);
}

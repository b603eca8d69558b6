/**
 * Access control lists in the manner of mosquitto's acl_file: each rule grants (or denies) read,
 * write or both on a topic filter, where `%u` stands for the client's user name and `%c` for its
 * client identifier. Pure functions over topic strings.
 *
 *   readwrite devices/%c/#      (a leading `pattern` or `topic` keyword, as mosquitto writes
 *   read      public/#           it, is accepted and means the same)
 *   deny      public/secrets/#
 *   sensors/+/temp              (no access word: readwrite)
 *
 * A decision: publishing to a topic needs a write rule matching it and no deny rule matching it;
 * subscribing to a filter needs a read rule covering every topic the filter can match and no
 * deny rule covering the filter; a deny rule it overlaps filters its deliveries (denialsFor).
 * Deny wins over any grant, whatever the order.
 *
 * Shared subscriptions are governed by rules of their own, `$share/<share name>/<filter>`, whose
 * share name is a name, `%u`, `%c` or `+` (any):
 *
 *   read $share/workers/jobs/#  (may join share `workers` on filters within jobs/#)
 *   read $share/%u/reports/#    (may join a share named after its own user name)
 *
 * Joining `$share/<name>/<filter>` needs such a read rule whose share name matches and whose
 * filter covers the filter, and no deny rule, shared or plain, that overlaps it. A plain read
 * rule grants no shared subscription: a reader of `jobs/#` cannot take a share of the work of
 * the backend's `$share/workers/jobs/#`.
 */
import { checkTopicFilter, topicMatches } from '../protocol/topic';

/** `connect`: not about topics; the rule's pattern is a client id this identity may connect with. */
export type AclAccess = 'read' | 'write' | 'readwrite' | 'deny' | 'connect';

export interface AclRule {
  readonly access: AclAccess;
  /** A topic filter, possibly with `%u` / `%c` placeholders. */
  readonly filter: string;
}

/** Who asks: the identity established at CONNECT. */
export interface AclSubject {
  readonly username?: string;
  readonly clientId: string;
}

export class AclSyntaxError extends Error {
  override readonly name = 'AclSyntaxError';
}

const ACCESS_WORDS: readonly AclAccess[] = ['read', 'write', 'readwrite', 'deny'];

const SHARE_PREFIX = '$share/';

/** A shared subscription (or a rule about them) split: `$share/<share name>/<filter>`; undefined if it is none. */
export function splitShared(filter: string): { shareName: string; filter: string } | undefined {
  if (!filter.startsWith(SHARE_PREFIX)) return undefined;
  const rest = filter.slice(SHARE_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return { shareName: rest, filter: '' };
  return { shareName: rest.slice(0, slash), filter: rest.slice(slash + 1) };
}

/** One rule, e.g. `readwrite devices/%u/#`, or `connect %u-*` (a client id pattern). */
export function parseAclRule(line: string): AclRule {
  let words = line.trim().split(/\s+/);
  if (words[0] === 'connect' && words.length > 1) return parseConnectRule(line, words.slice(1).join(' '));
  if (words[0] === 'pattern' || words[0] === 'topic') words = words.slice(1);
  const [first, ...rest] = words;
  const hasAccess = ACCESS_WORDS.includes(first as AclAccess) && rest.length > 0;
  const access = hasAccess ? (first as AclAccess) : 'readwrite';
  // A filter may contain spaces: everything after the access word is the filter.
  const filter = (hasAccess ? rest : words).join(' ');
  if (filter === '') throw new AclSyntaxError(`ACL rule "${line}" has no topic filter`);
  const shared = splitShared(filter);
  if (shared) checkShareRule(line, access, shared);
  const check = checkTopicFilter((shared?.filter ?? filter).replaceAll('%u', 'u').replaceAll('%c', 'c'));
  if (!check.ok) throw new AclSyntaxError(`ACL rule "${line}": ${check.reason}`);
  return { access, filter };
}

/**
 * `connect <client id pattern>`: once any connect rule is configured, a client may connect only
 * with a client id that one of its rules matches (AWS IoT Core's iot:Connect on client/<id>).
 * `%u` is the user name; `*` matches any run of characters. `%c` would match every client id.
 */
function parseConnectRule(line: string, pattern: string): AclRule {
  if (pattern.includes('%c')) throw new AclSyntaxError(`ACL rule "${line}": a connect rule cannot use %c`);
  return { access: 'connect', filter: pattern };
}

/** A connect rule's pattern (substituted) as a matcher of client ids. */
function clientIdMatcher(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'su');
}

function checkShareRule(line: string, access: AclAccess, shared: { shareName: string; filter: string }): void {
  if (access === 'write') throw new AclSyntaxError(`ACL rule "${line}": a $share rule governs subscriptions: read or deny, not write`);
  if (shared.filter === '') throw new AclSyntaxError(`ACL rule "${line}": a $share rule is $share/<share name>/<filter>`);
  if (shared.shareName !== '+' && /[+#]/.test(shared.shareName)) {
    throw new AclSyntaxError(`ACL rule "${line}": the share name is a name, %u, %c or + (any share)`);
  }
}

/** Rules one per line; blank lines and lines starting with '#' followed by a space (comments) are skipped. */
export function parseAcl(text: string): AclRule[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !/^#(\s|$)/.test(line))
    .map(parseAclRule);
}

/**
 * The rule's filter for this subject, or undefined when the rule cannot apply to it: the subject
 * has no user name for `%u`, or its user name or client id holds `+`, `#` or `/`, which would
 * turn the placeholder into a wildcard or reach into another client's subtree (the hole behind
 * mosquitto's CVE-2017-7650), or starts with `$`, which would reach the server's own topics
 * (`%u/#` as `$SYS/#`). Both placeholders are replaced in one pass over the rule, so a value that
 * itself contains `%c` or `%u` stays literal: a user named `x%c` cannot hand the rule to its
 * client id.
 */
export function substitute(filter: string, subject: AclSubject): string | undefined {
  let applies = true;
  const out = filter.replace(/%[uc]/g, (placeholder) => {
    const value = placeholder === '%u' ? subject.username : subject.clientId;
    if (value === undefined || !safeLevel(value)) applies = false;
    return value ?? '';
  });
  return applies ? out : undefined;
}

function safeLevel(value: string): boolean {
  return value !== '' && !value.startsWith('$') && !/[+#/\u0000]/.test(value);
}

/** A rule about shared subscriptions, substituted: share name (`+`: any) and filter. */
interface ShareRule {
  readonly shareName: string;
  readonly filter: string;
}

/** The rules as they apply to one subject. */
export class SubjectAcl {
  private readonly grants: { read: string[]; write: string[] } = { read: [], write: [] };
  private readonly denies: string[] = [];
  private readonly shareGrants: ShareRule[] = [];
  private readonly shareDenies: ShareRule[] = [];
  /** A deny rule that could not be substituted denies everything: fail closed. */
  private readonly denyAll: boolean;
  /** Whether any connect rule is configured, and whether one lets this subject use its client id. */
  private readonly connectRules: { readonly any: boolean; readonly allowed: boolean };

  constructor(rules: readonly AclRule[], subject: AclSubject) {
    let denyAll = false;
    const connectRules = rules.filter((rule) => rule.access === 'connect');
    this.connectRules = {
      any: connectRules.length > 0,
      allowed: connectRules.some((rule) => {
        const pattern = substitute(rule.filter, subject);
        return pattern !== undefined && clientIdMatcher(pattern).test(subject.clientId);
      }),
    };
    for (const rule of rules) {
      if (rule.access === 'connect') continue;
      const filter = substitute(rule.filter, subject);
      if (filter === undefined) {
        if (rule.access === 'deny') denyAll = true;
        continue;
      }
      const shared = splitShared(filter);
      if (shared) {
        (rule.access === 'deny' ? this.shareDenies : this.shareGrants).push(shared);
        continue;
      }
      if (rule.access === 'deny') {
        this.denies.push(filter);
        continue;
      }
      if (rule.access !== 'write') this.grants.read.push(filter);
      if (rule.access !== 'read') this.grants.write.push(filter);
    }
    this.denyAll = denyAll;
  }

  /** The subject's client id is one it may connect with: no connect rule is configured, or one matches. */
  canConnect(): boolean {
    return !this.connectRules.any || this.connectRules.allowed;
  }

  canPublish(topic: string): boolean {
    return this.grants.write.some((f) => topicMatches(f, topic)) && !this.denied(topic);
  }

  /** A message on this topic may be delivered to the subject (outside shared subscriptions). */
  canReceive(topic: string): boolean {
    return this.grants.read.some((f) => topicMatches(f, topic)) && !this.denied(topic);
  }

  /**
   * The filter as the client sent it (`$share/<share name>/<filter>` for a shared subscription).
   * A read rule must cover every topic the filter can match. A plain filter is refused only when
   * a deny rule covers it all; one that merely overlaps a deny rule is granted, and the rules it
   * overlaps (denialsFor) travel with the subscription, so each delivery skips a denied topic, as
   * mosquitto filters each message. A shared subscription overlapping a deny rule is refused: one
   * member is chosen per message, and a member that skipped it would lose it for the group.
   */
  canSubscribe(sent: string): boolean {
    const shared = splitShared(sent);
    const filter = shared ? shared.filter : sent;
    if (this.denyAll) return false;
    if (!shared) return !this.denies.some((d) => filterCovers(d, filter)) && this.grants.read.some((rule) => filterCovers(rule, filter));
    if (this.denies.some((d) => filtersOverlap(d, filter))) return false;
    const names = (rule: ShareRule) => rule.shareName === '+' || rule.shareName === shared.shareName;
    if (this.shareDenies.some((rule) => names(rule) && filtersOverlap(rule.filter, filter))) return false;
    return this.shareGrants.some((rule) => names(rule) && filterCovers(rule.filter, filter));
  }

  /** The deny rules (substituted) a granted plain filter overlaps: its deliveries skip the topics they match. */
  denialsFor(sent: string): string[] {
    if (splitShared(sent)) return [];
    return this.denies.filter((d) => filtersOverlap(d, sent));
  }

  private denied(topic: string): boolean {
    return this.denyAll || this.denies.some((d) => topicMatches(d, topic));
  }
}

/** A level a first-level wildcard cannot match ([MQTT-4.7.2-1]). */
const isDollar = (level: string | undefined, i: number): boolean => i === 0 && level !== undefined && level !== '+' && level !== '#' && level.startsWith('$');

/** Does every topic that `filter` matches also match `rule`? */
export function filterCovers(rule: string, filter: string): boolean {
  const r = rule.split('/');
  const f = filter.split('/');
  for (let i = 0; i < r.length; i++) {
    const level = r[i]!;
    if (level === '#') return !isDollar(f[i], i);
    // From here the filter matches any continuation, its parent included: only a final '#' does
    // too, or '+/#' at the top, since every topic has at least one level.
    if (f[i] === '#') return i === 0 && level === '+' && r.length === 2 && r[1] === '#';
    // The filter ends here but the rule needs another level.
    if (i >= f.length) return false;
    if (level === '+') {
      if (isDollar(f[i], i)) return false;
      continue;
    }
    if (f[i] !== level) return false;
  }
  return f.length === r.length;
}

/** Is there a topic that both filters match? */
export function filtersOverlap(a: string, b: string): boolean {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; ; i++) {
    const p = x[i];
    const q = y[i];
    if (p === '#' || q === '#') return !isDollar(p === '#' ? q : p, i);
    if (p === undefined || q === undefined) return p === q;
    if (p === '+' || q === '+') {
      if (isDollar(p === '+' ? q : p, i)) return false;
      continue;
    }
    if (p !== q) return false;
  }
}

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
 * A decision: publishing to a topic needs a write rule matching it; subscribing to a filter needs
 * a read rule covering every topic the filter can match; and no deny rule may match the topic
 * or overlap the filter. Deny wins over any grant, whatever the order.
 */
import { checkTopicFilter, topicMatches } from '../protocol/topic';

export type AclAccess = 'read' | 'write' | 'readwrite' | 'deny';

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

/** One rule, e.g. `readwrite devices/%u/#`. */
export function parseAclRule(line: string): AclRule {
  let words = line.trim().split(/\s+/);
  if (words[0] === 'pattern' || words[0] === 'topic') words = words.slice(1);
  const [first, ...rest] = words;
  const hasAccess = ACCESS_WORDS.includes(first as AclAccess) && rest.length > 0;
  const access = hasAccess ? (first as AclAccess) : 'readwrite';
  // A filter may contain spaces: everything after the access word is the filter.
  const filter = (hasAccess ? rest : words).join(' ');
  if (filter === '') throw new AclSyntaxError(`ACL rule "${line}" has no topic filter`);
  const check = checkTopicFilter(filter.replaceAll('%u', 'u').replaceAll('%c', 'c'));
  if (!check.ok) throw new AclSyntaxError(`ACL rule "${line}": ${check.reason}`);
  return { access, filter };
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

/** The rules as they apply to one subject. */
export class SubjectAcl {
  private readonly grants: { read: string[]; write: string[] } = { read: [], write: [] };
  private readonly denies: string[] = [];
  /** A deny rule that could not be substituted denies everything: fail closed. */
  private readonly denyAll: boolean;

  constructor(rules: readonly AclRule[], subject: AclSubject) {
    let denyAll = false;
    for (const rule of rules) {
      const filter = substitute(rule.filter, subject);
      if (rule.access === 'deny') {
        if (filter === undefined) denyAll = true;
        else this.denies.push(filter);
        continue;
      }
      if (filter === undefined) continue;
      if (rule.access !== 'write') this.grants.read.push(filter);
      if (rule.access !== 'read') this.grants.write.push(filter);
    }
    this.denyAll = denyAll;
  }

  canPublish(topic: string): boolean {
    return this.grants.write.some((f) => topicMatches(f, topic)) && !this.denied(topic);
  }

  /** A message on this topic may be delivered to the subject. */
  canReceive(topic: string): boolean {
    return this.grants.read.some((f) => topicMatches(f, topic)) && !this.denied(topic);
  }

  /** Every topic the filter can match must be readable, so no later delivery needs a check. */
  canSubscribe(filter: string): boolean {
    if (this.denyAll || this.denies.some((d) => filtersOverlap(d, filter))) return false;
    return this.grants.read.some((rule) => filterCovers(rule, filter));
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

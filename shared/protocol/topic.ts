/**
 * Topic names and topic filters (MQTT 5.0 section 4.7, 3.1.1 section 4.7): validation and
 * matching. Pure functions; the statement ids name the rule each check enforces.
 */

const MAX_TOPIC_BYTES = 65535;

export type TopicCheck = { ok: true } | { ok: false; reason: string };

const ok: TopicCheck = { ok: true };

function commonChecks(value: string, what: string): TopicCheck {
  // [MQTT-4.7.3-1] topic names and filters are at least one character long
  if (value.length === 0) return { ok: false, reason: `${what} is empty` };
  // [MQTT-4.7.3-3] topic names and filters are UTF-8 strings of at most 65,535 bytes
  if (Buffer.byteLength(value, 'utf8') > MAX_TOPIC_BYTES) return { ok: false, reason: `${what} is too long` };
  // [MQTT-4.7.3-2] topic names and filters must not include the null character
  if (value.includes('\u0000')) return { ok: false, reason: `${what} contains U+0000` };
  return ok;
}

/** A topic name, as carried by PUBLISH: no wildcards. */
export function checkTopicName(topic: string): TopicCheck {
  const common = commonChecks(topic, 'topic name');
  if (!common.ok) return common;
  // [MQTT-3.3.2-2] the topic name in a PUBLISH must not contain wildcard characters
  if (topic.includes('+') || topic.includes('#')) return { ok: false, reason: 'topic name contains a wildcard' };
  return ok;
}

/** A topic filter, as carried by SUBSCRIBE and UNSUBSCRIBE. */
export function checkTopicFilter(filter: string): TopicCheck {
  const common = commonChecks(filter, 'topic filter');
  if (!common.ok) return common;
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes('#')) {
      // [MQTT-4.7.1-1] '#' stands alone as the last level
      if (level !== '#' || i !== levels.length - 1) return { ok: false, reason: "'#' must be the whole last level" };
    }
    // [MQTT-4.7.1-2] '+' occupies an entire level
    if (level.includes('+') && level !== '+') return { ok: false, reason: "'+' must be a whole level" };
  }
  return ok;
}

export function hasWildcard(filter: string): boolean {
  return filter.includes('+') || filter.includes('#');
}

/** Does `filter` match the topic name `topic`? */
export function topicMatches(filter: string, topic: string): boolean {
  // [MQTT-4.7.2-1] filters starting with a wildcard do not match topics starting with '$'
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i]!;
    // '#' matches the parent level and any number of child levels ("sport/#" matches "sport")
    if (level === '#') return i === f.length - 1;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

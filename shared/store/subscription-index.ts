/**
 * The key scheme of the routing index (the Subscriptions table), as pure functions.
 *
 * - `f|<filter>`: the subscriptions to one filter (one Query finds them all).
 * - `m|<filter>`: a marker counting the subscriptions to that filter (exact or wildcard), so that
 *   one BatchGetItem tells which of many candidate filters have subscribers.
 * - `shape|<copy>|<group>`: the *shapes* of the wildcard filters of one group, with a count each.
 *   A filter's shape is its depth and which levels are `+` or a final `#` (`dev/+/temp` has shape
 *   `L+L`, `a/#` has `L#`); its group is its first level when that is literal (`=dev`), or `*` for
 *   every filter starting with a wildcard. The shape item of a group is kept in SHAPE_COPIES
 *   identical copies (`<copy>` 0..R-1); a write updates every copy, a read takes one at random.
 *
 * To route a topic: read the shapes of its group (and of `*`, unless the topic starts with `$`,
 * [MQTT-4.7.2-1]); each shape gives exactly one filter that could match the topic (its literal
 * levels are the topic's, see candidateFilter), and the topic itself is a candidate for the
 * exact subscribers; the candidates whose marker exists are then Queried. Whatever the topic's
 * depth or the number of subscriptions, that is a fixed number of rounds.
 */

export const FILTER_PREFIX = 'f|';
export const MARKER_PREFIX = 'm|';
export const MARKER_SORT_KEY = 'marker';
export const SHAPE_PREFIX = 'shape|';
export const SHAPE_SORT_KEY = 'shapes';
/** Shapes are attributes of a shape item, named this prefix and the shape. */
export const SHAPE_ATTRIBUTE_PREFIX = 's';
/** The group of the filters whose first level is `+` or `#`. */
export const WILDCARD_GROUP = '*';
/** Copies of each group's shape item (R). Fixed for the life of a table: a reader may take any of them. */
export const SHAPE_COPIES = 8;

const LITERAL = 'L';

export function filterKey(filter: string): string {
  return FILTER_PREFIX + filter;
}

export function markerKey(filter: string): string {
  return MARKER_PREFIX + filter;
}

export function shapeKey(group: string, copy: number): string {
  return `${SHAPE_PREFIX}${copy}|${group}`;
}

/** The group of a filter, or of the literal first level of a topic. */
export function groupOf(filterOrTopic: string): string {
  const first = firstLevel(filterOrTopic);
  return first === '+' || first === '#' ? WILDCARD_GROUP : `=${first}`;
}

/** A wildcard filter's shape: one character per level, `L` literal, `+` or `#` (`a/+/c` -> `L+L`). */
export function shapeOf(filter: string): string {
  return filter
    .split('/')
    .map((level) => (level === '+' || level === '#' ? level : LITERAL))
    .join('');
}

/**
 * The one filter of this shape that matches the topic, if any: the shape's literal levels taken
 * from the topic. `L#` for `a` is `a/#` (`#` matches the parent level too).
 */
export function candidateFilter(shape: string, levels: readonly string[]): string | undefined {
  const multi = shape.endsWith('#');
  const fixed = multi ? shape.length - 1 : shape.length;
  if (multi ? levels.length < fixed : levels.length !== fixed) return undefined;
  const out: string[] = [];
  for (let i = 0; i < fixed; i++) out.push(shape[i] === '+' ? '+' : levels[i]!);
  if (multi) out.push('#');
  return out.join('/');
}

/** The groups whose shapes a topic's lookup reads: its first level's, and `*` unless it starts with `$`. */
export function groupsForTopic(topic: string): string[] {
  // [MQTT-4.7.2-1] a filter starting with a wildcard does not match a topic starting with '$'
  return topic.startsWith('$') ? [groupOf(topic)] : [groupOf(topic), WILDCARD_GROUP];
}

/**
 * Every filter that could match the topic, given the shapes in use in its groups: the topic
 * itself (its exact subscribers) and one per shape that fits its depth. Each at most once.
 */
export function candidateFilters(topic: string, shapesByGroup: ReadonlyMap<string, readonly string[]>): string[] {
  const levels = topic.split('/');
  const out = new Set<string>([topic]);
  for (const group of groupsForTopic(topic)) {
    for (const shape of shapesByGroup.get(group) ?? []) {
      const candidate = candidateFilter(shape, levels);
      if (candidate !== undefined) out.add(candidate);
    }
  }
  return [...out];
}

/** The shapes with a positive count among a shape item's attributes. */
export function shapesIn(item: Readonly<Record<string, unknown>>): string[] {
  return Object.entries(item).flatMap(([name, count]) =>
    name.startsWith(SHAPE_ATTRIBUTE_PREFIX) && typeof count === 'number' && count > 0 ? [name.slice(SHAPE_ATTRIBUTE_PREFIX.length)] : [],
  );
}

function firstLevel(filterOrTopic: string): string {
  const slash = filterOrTopic.indexOf('/');
  return slash < 0 ? filterOrTopic : filterOrTopic.slice(0, slash);
}

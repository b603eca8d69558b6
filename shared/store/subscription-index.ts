/**
 * The key scheme of the routing index (the Subscriptions table), as pure functions.
 *
 * Exact filters (no wildcard) are found by one Query on `f|<topic>`. Wildcard filters are
 * found by walking a trie kept in the same table: every prefix of a wildcard filter
 * (`a`, `a/+`, `a/+/c` for `a/+/c`) has a node item `n|<prefix>` counting the wildcard
 * subscriptions that pass through it (`refs`) and that end at it (`ends`). To match topic
 * t1/.../tn the walk reads, level by level, only the children that can still match: the literal
 * level, `+` and `#` under each node matched so far. A subscription whose filter diverges from
 * the topic (`a/x/#` for topic `a/b/c`) is never read; the reads grow with the depth of the
 * topic and with the number of matching filters, not with the number of subscriptions.
 */

export const FILTER_PREFIX = 'f|';
export const NODE_PREFIX = 'n|';
export const NODE_SORT_KEY = 'node';

export function filterKey(filter: string): string {
  return FILTER_PREFIX + filter;
}

export function nodeKey(prefix: string): string {
  return NODE_PREFIX + prefix;
}

/** The trie prefixes of a filter: `a/+/c` -> [`a`, `a/+`, `a/+/c`]. */
export function filterPrefixes(filter: string): string[] {
  const levels = filter.split('/');
  return levels.map((_, i) => levels.slice(0, i + 1).join('/'));
}

/** A prefix matched so far while walking; `undefined` stands for the root (depth 0). */
export type WalkPrefix = string | undefined;

export function childOf(prefix: WalkPrefix, level: string): string {
  return prefix === undefined ? level : `${prefix}/${level}`;
}

/**
 * The node keys to read at one depth of the walk: for each prefix matched so far, its child
 * for the topic's level, and (unless the topic starts with `$` and this is the first level,
 * [MQTT-4.7.2-1]) its `+` and `#` children.
 */
export function candidatesAt(frontier: readonly WalkPrefix[], level: string, depth: number): string[] {
  const wildcardsAllowed = !(depth === 0 && level.startsWith('$'));
  const out: string[] = [];
  for (const prefix of frontier) {
    out.push(childOf(prefix, level));
    if (wildcardsAllowed) out.push(childOf(prefix, '+'), childOf(prefix, '#'));
  }
  return [...new Set(out)];
}

export function endsWithMultiLevel(prefix: string): boolean {
  return prefix === '#' || prefix.endsWith('/#');
}

export interface TrieNode {
  /** Wildcard subscriptions whose filter passes through or ends at this prefix. */
  readonly refs: number;
  /** Wildcard subscriptions whose filter is exactly this prefix. */
  readonly ends: number;
}

/** Reads the nodes that exist (refs > 0) among the given prefixes: one round trip. */
export type TrieNodeReader = (prefixes: readonly string[]) => Promise<Map<string, TrieNode>>;

/**
 * The wildcard filters that match a topic name, found by walking the trie one level at a time:
 * one read per level of the topic (while any node still matches), plus one for `p/#` filters
 * matching their parent level p ("sport/#" matches "sport").
 */
export async function matchingWildcardFilters(topic: string, readNodes: TrieNodeReader): Promise<string[]> {
  const levels = topic.split('/');
  const matched: string[] = [];
  let frontier: WalkPrefix[] = [undefined];
  let frontierNodes = new Map<string, TrieNode>();
  for (let depth = 0; depth < levels.length && frontier.length > 0; depth++) {
    const nodes = await readNodes(candidatesAt(frontier, levels[depth]!, depth));
    frontier = [];
    frontierNodes = new Map();
    for (const [prefix, node] of nodes) {
      if (endsWithMultiLevel(prefix)) {
        // `p/#` matches everything below p, however deep
        if (node.ends > 0) matched.push(prefix);
      } else {
        frontier.push(prefix);
        frontierNodes.set(prefix, node);
      }
    }
  }
  // Every level consumed: the filters ending exactly here match, and so do `p/#` below them.
  for (const [prefix, node] of frontierNodes) if (node.ends > 0) matched.push(prefix);
  if (frontier.length > 0) {
    const parents = await readNodes(frontier.map((prefix) => `${prefix}/#`));
    for (const [prefix, node] of parents) if (node.ends > 0) matched.push(prefix);
  }
  return matched;
}

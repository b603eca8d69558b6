/**
 * The key scheme of the Retained table, as pure functions, and the walk that finds the retained
 * messages a topic filter matches.
 *
 * Each topic prefix that has held a retained message at or below it is a node item keyed by its
 * parent and its own level: topic `a/b/c` is `pk = "2|a/b"`, `sk = "~c"`. The depth in the
 * partition key keeps `a/` (levels `a`, ``) apart from `a` and makes the root `"0|"`; the `~`
 * keeps a sort key non-empty for an empty level. So the children of a prefix are one Query,
 * which is what `+` and `#` need, and a literal level is a key built without a read.
 */

const LEVEL_MARK = '~';

export interface RetainedKey {
  readonly pk: string;
  readonly sk: string;
}

/** The node of a topic prefix (at least one level). */
export function retainedKey(levels: readonly string[]): RetainedKey {
  return { pk: childrenKey(levels.slice(0, -1)), sk: LEVEL_MARK + levels[levels.length - 1] };
}

/** The partition holding the children of a prefix (the root: no levels). */
export function childrenKey(levels: readonly string[]): string {
  return `${levels.length}|${levels.join('/')}`;
}

/** The levels of the node an item is, from its keys. */
export function levelsOf(key: RetainedKey): string[] {
  const bar = key.pk.indexOf('|');
  const depth = Number(key.pk.slice(0, bar));
  const parent = depth === 0 ? [] : key.pk.slice(bar + 1).split('/');
  return [...parent, key.sk.slice(LEVEL_MARK.length)];
}

/** A node reached by the walk; `item` is present when it was already read. */
export interface WalkNode<T> {
  readonly levels: readonly string[];
  readonly item?: T;
}

export interface RetainedReads<T> {
  /** The items of these nodes, where they exist. */
  nodes(keys: readonly RetainedKey[]): Promise<Map<string, T>>;
  /** The child items of a node, at most `max` of them. */
  children(levels: readonly string[], max: number): Promise<Array<{ levels: string[]; item: T }>>;
}

/** The nodes a walk found, and whether it stopped at its bound with more to read. */
export interface RetainedWalk<T> {
  readonly nodes: Array<WalkNode<T>>;
  readonly truncated: boolean;
}

const keyString = (levels: readonly string[]): string => JSON.stringify(levels);

/**
 * Every node whose topic matches the filter, with its item; at most `limit` nodes read by
 * queries (the `+` and `#` levels), so one filter costs a bounded walk. Reads: a Query per node
 * matched by `+` or below `#` (one after another while bounded), and one batch read for the
 * nodes reached by literal levels. [MQTT-4.7.2-1] a filter starting with a wildcard does not
 * match topics starting with `$`.
 */
export async function matchingRetainedNodes<T>(filter: string, reads: RetainedReads<T>, limit = Infinity): Promise<RetainedWalk<T>> {
  const levels = filter.split('/');
  const budget = new WalkBudget(limit);
  let frontier: Array<WalkNode<T>> = [{ levels: [] }];
  const found: Array<WalkNode<T>> = [];
  for (let depth = 0; depth < levels.length && frontier.length > 0; depth++) {
    const level = levels[depth]!;
    const hidesDollar = depth === 0;
    if (level === '#') {
      // [MQTT-4.7.1-2] `#` also matches the parent level itself: `a/#` matches `a`
      found.push(...frontier.filter((node) => node.levels.length > 0));
      found.push(...(await descendants(frontier, reads, hidesDollar, budget)));
      frontier = [];
      break;
    }
    if (level === '+') {
      const children = await budget.childrenOf(frontier.map((node) => node.levels), reads);
      frontier = children.filter((child) => !(hidesDollar && child.levels[0]!.startsWith('$')));
    } else {
      frontier = frontier.map((node) => ({ levels: [...node.levels, level] }));
    }
  }
  found.push(...frontier);
  const unread = found.filter((node) => node.item === undefined);
  if (unread.length === 0) return { nodes: found, truncated: budget.truncated };
  const items = await reads.nodes(unread.map((node) => retainedKey(node.levels)));
  const nodes = found.flatMap((node) => {
    if (node.item !== undefined) return [node];
    const item = items.get(keyString(node.levels));
    return item === undefined ? [] : [{ levels: node.levels, item }];
  });
  return { nodes, truncated: budget.truncated };
}

/** How many more nodes a walk may read by queries. */
class WalkBudget {
  truncated = false;

  constructor(private left: number) {}

  /** The children of these nodes, in order, while the budget lasts (unbounded: all at once). */
  async childrenOf<T>(parents: ReadonlyArray<readonly string[]>, reads: RetainedReads<T>): Promise<Array<{ levels: string[]; item: T }>> {
    if (!Number.isFinite(this.left)) return (await Promise.all(parents.map((levels) => reads.children(levels, Infinity)))).flat();
    const all: Array<{ levels: string[]; item: T }> = [];
    for (const levels of parents) {
      if (this.left <= 0) {
        this.truncated = true;
        break;
      }
      // One more than the budget tells whether there was more.
      const children = await reads.children(levels, this.left + 1);
      if (children.length > this.left) this.truncated = true;
      const taken = children.slice(0, this.left);
      this.left -= taken.length;
      all.push(...taken);
    }
    return all;
  }
}

async function descendants<T>(roots: Array<WalkNode<T>>, reads: RetainedReads<T>, hidesDollar: boolean, budget: WalkBudget): Promise<Array<WalkNode<T>>> {
  const all: Array<WalkNode<T>> = [];
  let frontier = roots.map((node) => node.levels);
  while (frontier.length > 0) {
    const children = await budget.childrenOf(frontier, reads);
    const visible = children.filter((child) => !(hidesDollar && child.levels.length === 1 && child.levels[0]!.startsWith('$')));
    all.push(...visible);
    frontier = visible.map((child) => child.levels);
  }
  return all;
}

/** The map key `RetainedReads.nodes` uses for a node. */
export function nodeId(levels: readonly string[]): string {
  return keyString(levels);
}

import { describe, expect, it } from 'vitest';
import {
  FILTER_PREFIX,
  NODE_PREFIX,
  candidatesAt,
  childOf,
  endsWithMultiLevel,
  filterKey,
  filterPrefixes,
  matchingWildcardFilters,
  nodeKey,
  type TrieNode,
} from '../../shared/store/subscription-index';
import { topicMatches } from '../../shared/protocol/topic';

describe('filterKey and nodeKey', () => {
  it('put exact filters and trie nodes in separate key spaces', () => {
    expect(filterKey('a/b')).toBe('f|a/b');
    expect(nodeKey('a/b')).toBe('n|a/b');
    expect(filterKey('a/b')).not.toBe(nodeKey('a/b'));
  });

  it('keep the filter or prefix whole after the key prefix', () => {
    for (const filter of ['a/+/c', '#', '/', '$SYS/#', 'f|x', 'n|y']) {
      expect(filterKey(filter).slice(FILTER_PREFIX.length)).toBe(filter);
      expect(nodeKey(filter).slice(NODE_PREFIX.length)).toBe(filter);
    }
  });
});

describe('filterPrefixes', () => {
  it.each([
    ['a/+/c', ['a', 'a/+', 'a/+/c']],
    ['#', ['#']],
    ['+', ['+']],
    ['sport/#', ['sport', 'sport/#']],
    ['+/tennis/#', ['+', '+/tennis', '+/tennis/#']],
    ['$SYS/+', ['$SYS', '$SYS/+']],
    // empty levels are levels: the walk reaches them through childOf the same way
    ['/+', ['', '/+']],
    ['a//#', ['a', 'a/', 'a//#']],
  ] as const)('%j -> %j', (filter, prefixes) => {
    expect(filterPrefixes(filter)).toEqual(prefixes);
  });

  it('has one prefix per level, the last being the filter itself', () => {
    const filter = 'a/b/+/d/#';
    const prefixes = filterPrefixes(filter);
    expect(prefixes).toHaveLength(5);
    expect(prefixes.at(-1)).toBe(filter);
  });
});

describe('childOf', () => {
  it('is the level itself under the root', () => {
    expect(childOf(undefined, 'a')).toBe('a');
    expect(childOf(undefined, '+')).toBe('+');
    expect(childOf(undefined, '')).toBe('');
  });

  it('joins a prefix and a level with /', () => {
    expect(childOf('a', 'b')).toBe('a/b');
    expect(childOf('a/+', '#')).toBe('a/+/#');
    expect(childOf('', 'finance')).toBe('/finance');
    expect(childOf('a', '')).toBe('a/');
  });

  it('rebuilds the prefixes of a filter level by level', () => {
    for (const filter of ['a/+/c', '/+', 'a//#', '$SYS/monitor/+']) {
      const walked: string[] = [];
      let prefix: string | undefined;
      for (const level of filter.split('/')) {
        prefix = childOf(prefix, level);
        walked.push(prefix);
      }
      expect(walked).toEqual(filterPrefixes(filter));
    }
  });
});

describe('candidatesAt', () => {
  it('reads the literal, + and # children of the root at depth 0', () => {
    expect(candidatesAt([undefined], 'sport', 0)).toEqual(['sport', '+', '#']);
  });

  it('[MQTT-4.7.2-1] reads no + or # children of the root for a first level starting with $', () => {
    expect(candidatesAt([undefined], '$SYS', 0)).toEqual(['$SYS']);
    expect(candidatesAt([undefined], '$share', 0)).toEqual(['$share']);
  });

  it('[MQTT-4.7.2-1] reads + and # children below a $ first level', () => {
    expect(candidatesAt(['$SYS'], 'monitor', 1)).toEqual(['$SYS/monitor', '$SYS/+', '$SYS/#']);
  });

  it('reads + and # children for a $ that is not on the first level', () => {
    expect(candidatesAt(['a'], '$b', 1)).toEqual(['a/$b', 'a/+', 'a/#']);
  });

  it('reads the literal, + and # children of every prefix in the frontier', () => {
    expect(candidatesAt(['sport', '+'], 'tennis', 1)).toEqual(['sport/tennis', 'sport/+', 'sport/#', '+/tennis', '+/+', '+/#']);
  });

  it('reads each node once when the frontier repeats a prefix', () => {
    const candidates = candidatesAt(['a', 'b', 'a'], 'c', 1);
    expect(candidates).toEqual(['a/c', 'a/+', 'a/#', 'b/c', 'b/+', 'b/#']);
  });

  it('produces no duplicates over a wide frontier', () => {
    const frontier = ['a/b', 'a/+', '+/b', '+/+', '', '/'];
    const candidates = candidatesAt(frontier, 'c', 2);
    expect(new Set(candidates).size).toBe(candidates.length);
    expect(candidates).toHaveLength(frontier.length * 3);
  });

  it('handles an empty level', () => {
    expect(candidatesAt([undefined], '', 0)).toEqual(['', '+', '#']);
    expect(candidatesAt([''], 'finance', 1)).toEqual(['/finance', '/+', '/#']);
  });

  it('reads nothing for an empty frontier', () => {
    expect(candidatesAt([], 'a', 3)).toEqual([]);
  });

  /** The store's walk over an in-memory trie of wildcard filters, counting its reads. */
  async function walk(filters: readonly string[], topic: string): Promise<{ matched: string[]; reads: number }> {
    const nodes = new Map<string, TrieNode>();
    for (const filter of filters) {
      for (const prefix of filterPrefixes(filter)) {
        const node = nodes.get(prefix) ?? { refs: 0, ends: 0 };
        nodes.set(prefix, { refs: node.refs + 1, ends: node.ends + (prefix === filter ? 1 : 0) });
      }
    }
    let reads = 0;
    const matched = await matchingWildcardFilters(topic, async (prefixes) => {
      reads += 1;
      return new Map(prefixes.flatMap((prefix) => (nodes.has(prefix) ? [[prefix, nodes.get(prefix)!] as const] : [])));
    });
    return { matched: matched.sort(), reads };
  }

  const filters = ['#', '+', '+/+', '/+', 'sport/#', 'sport/+', 'sport/tennis/+', '+/tennis/#', '$SYS/#', '+/monitor/Clients', 'a//#', 'a/+/c'];

  it.each(['sport', 'sport/tennis', 'sport/tennis/player1', '/finance', 'finance', '$SYS/monitor/Clients', '$SYS', 'a//x', 'a/b/c', 'x/monitor/Clients'])(
    'finds, walking the prefixes of %j, the filters topicMatches accepts',
    async (topic) => {
      const expected = filters.filter((filter) => topicMatches(filter, topic)).sort();
      expect((await walk(filters, topic)).matched).toEqual(expected);
    },
  );

  it('reads once per topic level plus once for parent-level # filters, whatever else is subscribed', async () => {
    const unrelated = Array.from({ length: 200 }, (_, i) => `dev/${i + 100}/#`);
    const few = await walk(['dev/+/temp'], 'dev/7/temp');
    const many = await walk(['dev/+/temp', ...unrelated], 'dev/7/temp');
    expect(many).toEqual(few);
    expect(few).toEqual({ matched: ['dev/+/temp'], reads: 4 });
  });

  it('stops reading as soon as nothing can match', async () => {
    expect(await walk(['other/+/x'], 'dev/7/temp/deep/topic')).toEqual({ matched: [], reads: 1 });
  });
});

describe('endsWithMultiLevel', () => {
  it.each([
    ['#', true],
    ['a/#', true],
    ['/#', true],
    ['+/#', true],
    ['a', false],
    ['a/+', false],
    ['+', false],
    ['a/b', false],
    ['', false],
  ] as const)('%j -> %s', (prefix, expected) => {
    expect(endsWithMultiLevel(prefix)).toBe(expected);
  });
});

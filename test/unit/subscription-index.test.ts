import { describe, expect, it } from 'vitest';
import {
  FILTER_PREFIX,
  MARKER_PREFIX,
  WILDCARD_GROUP,
  candidateFilter,
  candidateFilters,
  filterKey,
  groupOf,
  groupsForTopic,
  markerKey,
  shapeKey,
  shapeOf,
  shapesIn,
} from '../../shared/store/subscription-index';
import { hasWildcard, topicMatches } from '../../shared/protocol/topic';

describe('filterKey, markerKey and shapeKey', () => {
  it('put subscriptions, markers and shape items in separate key spaces', () => {
    expect(filterKey('a/b')).toBe('f|a/b');
    expect(markerKey('a/b')).toBe('m|a/b');
    expect(shapeKey('=a', 3)).toBe('shape|3|=a');
    expect(new Set([filterKey('a'), markerKey('a'), shapeKey('=a', 0)]).size).toBe(3);
  });

  it('keep the filter whole after the key prefix', () => {
    for (const filter of ['a/+/c', '#', '/', '$SYS/#', 'f|x', 'm|y']) {
      expect(filterKey(filter).slice(FILTER_PREFIX.length)).toBe(filter);
      expect(markerKey(filter).slice(MARKER_PREFIX.length)).toBe(filter);
    }
  });

  it('give each copy of a group its own key', () => {
    const keys = Array.from({ length: 8 }, (_, copy) => shapeKey('=dev', copy));
    expect(new Set(keys).size).toBe(8);
  });
});

describe('groupOf', () => {
  it.each([
    ['dev/+/temp', '=dev'],
    ['dev', '=dev'],
    ['+/x', WILDCARD_GROUP],
    ['#', WILDCARD_GROUP],
    ['+', WILDCARD_GROUP],
    ['/+', '='],
    ['$SYS/#', '=$SYS'],
    ['*/+', '=*'], // a literal '*' level is not the wildcard group
  ] as const)('%j -> %j', (filter, group) => {
    expect(groupOf(filter)).toBe(group);
  });
});

describe('groupsForTopic', () => {
  it('is the first level and the wildcard group', () => {
    expect(groupsForTopic('dev/7/temp')).toEqual(['=dev', WILDCARD_GROUP]);
    expect(groupsForTopic('/x')).toEqual(['=', WILDCARD_GROUP]);
  });

  it('[MQTT-4.7.2-1] is the first level only for a topic starting with $', () => {
    expect(groupsForTopic('$SYS/uptime')).toEqual(['=$SYS']);
  });
});

describe('shapeOf', () => {
  it.each([
    ['a/+/c', 'L+L'],
    ['#', '#'],
    ['+', '+'],
    ['sport/#', 'L#'],
    ['+/tennis/#', '+L#'],
    ['/+', 'L+'],
    ['a//#', 'LL#'],
    ['bench/r1/fleet/+/telemetry', 'LLL+L'],
  ] as const)('%j -> %j', (filter, shape) => {
    expect(shapeOf(filter)).toBe(shape);
  });

  it('is the same for filters that differ only in their literal levels', () => {
    expect(new Set(Array.from({ length: 300 }, (_, i) => shapeOf(`dev/${i}/#`)))).toEqual(new Set(['LL#']));
  });
});

describe('candidateFilter', () => {
  it('takes the literal levels from the topic', () => {
    expect(candidateFilter('L+L', ['dev', '7', 'temp'])).toBe('dev/+/temp');
    expect(candidateFilter('+L', ['dev', '7'])).toBe('+/7');
    expect(candidateFilter('LLL+L', 'bench/r1/fleet/42/telemetry'.split('/'))).toBe('bench/r1/fleet/+/telemetry');
  });

  it('fits only a topic of its depth, unless it ends in #', () => {
    expect(candidateFilter('L+', ['a'])).toBeUndefined();
    expect(candidateFilter('L+', ['a', 'b', 'c'])).toBeUndefined();
    expect(candidateFilter('L#', ['a', 'b', 'c'])).toBe('a/#');
  });

  it('# matches the parent level too', () => {
    expect(candidateFilter('L#', ['a'])).toBe('a/#');
    expect(candidateFilter('LL#', ['a'])).toBeUndefined();
    expect(candidateFilter('#', ['a'])).toBe('#');
  });

  it('keeps empty levels', () => {
    expect(candidateFilter('L+', ['', 'finance'])).toBe('/+');
    expect(candidateFilter('++', ['', ''])).toBe('+/+');
  });
});

describe('shapesIn', () => {
  it('lists the shapes counted above zero, nothing else of the item', () => {
    expect(shapesIn({ pk: 'shape|0|=a', sk: 'shapes', 'sL+': 2, 'sL#': 0, 'sLL': -1, 's+L': 1 }).sort()).toEqual(['+L', 'L+']);
  });
});

describe('candidateFilters', () => {
  /** The shapes of a set of filters, by group, as the shape items hold them. */
  function shapesFor(filters: readonly string[]): Map<string, string[]> {
    const byGroup = new Map<string, Set<string>>();
    for (const filter of filters.filter(hasWildcard)) {
      const group = byGroup.get(groupOf(filter)) ?? new Set();
      group.add(shapeOf(filter));
      byGroup.set(groupOf(filter), group);
    }
    return new Map([...byGroup].map(([group, shapes]) => [group, [...shapes]]));
  }

  const filters = [
    '#', '+', '+/+', '/+', 'sport/#', 'sport/+', 'sport/tennis/+', '+/tennis/#', '$SYS/#', '$SYS/+', '+/monitor/Clients',
    'a//#', 'a/+/c', 'a/b/c', 'sport', '$SYS/uptime', 'x/+/+/+/+/+/z',
  ];
  const topics = [
    'sport', 'sport/tennis', 'sport/tennis/player1', '/finance', 'finance', '$SYS/monitor/Clients', '$SYS', '$SYS/uptime', 'a//x',
    'a/b/c', 'x/monitor/Clients', 'x/1/2/3/4/5/z', '/', 'a',
  ];

  it.each(topics)('include every filter topicMatches accepts for %j, and the topic itself', (topic) => {
    const candidates = new Set(candidateFilters(topic, shapesFor(filters)));
    const matching = filters.filter((filter) => topicMatches(filter, topic));
    for (const filter of matching) expect(candidates).toContain(filter);
    expect(candidates).toContain(topic);
    // Every candidate is a filter that would match the topic: the markers read are all relevant.
    for (const candidate of candidates) expect(topicMatches(candidate, topic)).toBe(true);
  });

  it('are as many whatever the number of subscriptions of the same shapes', () => {
    const few = candidateFilters('dev/7/temp', shapesFor(['dev/+/temp']));
    const many = candidateFilters('dev/7/temp', shapesFor(['dev/+/temp', ...Array.from({ length: 300 }, (_, i) => `dev/${i + 100}/#`), 'dev/+/humidity']));
    expect(few.sort()).toEqual(['dev/+/temp', 'dev/7/temp']);
    expect(many.sort()).toEqual(['dev/+/temp', 'dev/7/#', 'dev/7/temp']);
  });

  it('do not grow with the depth of the topic', () => {
    const deep = 'a/b/c/d/e/f/g';
    expect(candidateFilters(deep, shapesFor(['a/+/c/d/e/f/g', 'a/#']))).toHaveLength(3);
    expect(candidateFilters('a/b/c', shapesFor(['a/+/c', 'a/#']))).toHaveLength(3);
  });

  it("[MQTT-4.7.2-1] take no wildcard-first filter for a '$' topic", () => {
    expect(candidateFilters('$SYS/x', shapesFor(['#', '+/x', '$SYS/+'])).sort()).toEqual(['$SYS/+', '$SYS/x']);
  });
});

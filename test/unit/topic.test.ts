import { describe, expect, it } from 'vitest';
import { checkTopicFilter, checkTopicName, hasWildcard, topicMatches } from '../../shared/protocol/topic';

describe('checkTopicName', () => {
  it.each(['a', 'a/b/c', 'sport/tennis/player1', '/', '//', '/finance', 'finance/', 'a//b', '$SYS/broker/load', 'a b', 'caf\u00e9/\u6e29\u5ea6'])(
    'accepts %j',
    (topic) => {
      expect(checkTopicName(topic)).toEqual({ ok: true });
    },
  );

  it('[MQTT-4.7.3-1] rejects an empty topic name', () => {
    expect(checkTopicName('')).toMatchObject({ ok: false });
  });

  it('[MQTT-4.7.3-2] rejects a topic name containing U+0000', () => {
    expect(checkTopicName('a/\u0000/b')).toMatchObject({ ok: false });
    expect(checkTopicName('\u0000')).toMatchObject({ ok: false });
  });

  it.each(['+', '#', 'a/+', 'a/#', 'a/+/b', 'sport+', 'a#', '+/finance'])('[MQTT-3.3.2-2] rejects the wildcard in %j', (topic) => {
    expect(checkTopicName(topic)).toMatchObject({ ok: false });
  });

  it('[MQTT-4.7.3-3] accepts a topic name of exactly 65,535 bytes', () => {
    expect(checkTopicName('a'.repeat(65535))).toEqual({ ok: true });
  });

  it('[MQTT-4.7.3-3] rejects a topic name longer than 65,535 bytes', () => {
    expect(checkTopicName('a'.repeat(65536))).toMatchObject({ ok: false });
  });

  it('[MQTT-4.7.3-3] counts the length in UTF-8 bytes, not in characters', () => {
    // 32,768 two-byte characters: 65,536 bytes
    expect(checkTopicName('\u00e9'.repeat(32768))).toMatchObject({ ok: false });
    expect(checkTopicName('\u00e9'.repeat(32767) + 'a')).toEqual({ ok: true });
  });

  it('gives a reason when it rejects', () => {
    const check = checkTopicName('a/+');
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.reason).not.toBe('');
  });
});

describe('checkTopicFilter', () => {
  it.each(['a', 'a/b', '+', '#', '/', '//', '+/+', '/+', '+/', 'a/+/c', 'sport/#', 'sport/+/player1', '+/tennis/#', '$SYS/#', '/#', 'a//b'])(
    'accepts %j',
    (filter) => {
      expect(checkTopicFilter(filter)).toEqual({ ok: true });
    },
  );

  it('[MQTT-4.7.3-1] rejects an empty topic filter', () => {
    expect(checkTopicFilter('')).toMatchObject({ ok: false });
  });

  it('[MQTT-4.7.3-2] rejects a topic filter containing U+0000', () => {
    expect(checkTopicFilter('a/\u0000')).toMatchObject({ ok: false });
    expect(checkTopicFilter('#\u0000')).toMatchObject({ ok: false });
  });

  it.each(['a/#/b', '#/a', '#/', '#/#'])('[MQTT-4.7.1-1] rejects # that is not the last level: %j', (filter) => {
    expect(checkTopicFilter(filter)).toMatchObject({ ok: false });
  });

  it.each(['a#', 'sport/tennis#', '#a', 'a/b#/c', '##'])('[MQTT-4.7.1-1] rejects # that is not a whole level: %j', (filter) => {
    expect(checkTopicFilter(filter)).toMatchObject({ ok: false });
  });

  it.each(['a/b+', 'sport+', '+a', 'a/+b/c', '++', 'a/+#'])('[MQTT-4.7.1-2] rejects + that is not a whole level: %j', (filter) => {
    expect(checkTopicFilter(filter)).toMatchObject({ ok: false });
  });

  it('[MQTT-4.7.3-3] accepts a topic filter of exactly 65,535 bytes', () => {
    expect(checkTopicFilter('a/'.repeat(32766) + 'a/#')).toEqual({ ok: true });
  });

  it('[MQTT-4.7.3-3] rejects a topic filter longer than 65,535 bytes', () => {
    expect(checkTopicFilter('a'.repeat(65534) + '/#')).toMatchObject({ ok: false });
  });
});

describe('hasWildcard', () => {
  it.each([
    ['a/b', false],
    ['/', false],
    ['$SYS/broker', false],
    ['+', true],
    ['#', true],
    ['a/+/c', true],
    ['a/#', true],
  ] as const)('%j -> %s', (filter, expected) => {
    expect(hasWildcard(filter)).toBe(expected);
  });
});

describe('topicMatches', () => {
  // [filter, topic name, matches?]
  const table: ReadonlyArray<readonly [string, string, boolean]> = [
    // exact filters
    ['a/b', 'a/b', true],
    ['a/b', 'a/b/c', false],
    ['a/b/c', 'a/b', false],
    ['a/b', 'a', false],
    // '#', spec 4.7.1.2
    ['sport/tennis/player1/#', 'sport/tennis/player1', true],
    ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
    ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true],
    ['sport/#', 'sport', true],
    ['sport/#', 'sport/tennis/player1', true],
    ['sport/#', 'sports', false],
    ['sport/#', 'sports/tennis', false],
    ['sport/#', 'sport/', true],
    ['#', 'sport', true],
    ['#', 'sport/tennis/player1', true],
    ['#', '/', true],
    ['#', '/finance', true],
    // '+', spec 4.7.1.3
    ['sport/tennis/+', 'sport/tennis/player1', true],
    ['sport/tennis/+', 'sport/tennis/player2', true],
    ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
    ['sport/+', 'sport', false],
    ['sport/+', 'sport/', true],
    ['+', 'a', true],
    ['+', 'a/b', false],
    ['+', '/finance', false],
    ['+/+', '/finance', true],
    ['/+', '/finance', true],
    ['+/tennis/#', 'sport/tennis', true],
    ['+/tennis/#', 'sport/tennis/player1', true],
    ['+/tennis/#', 'sport/football', false],
    ['a/+/c', 'a/b/c', true],
    ['a/+/c', 'a//c', true],
    ['a/+/c', 'a/b/d', false],
    ['+/+/+', 'a/b/c', true],
    ['+/+/+', 'a/b', false],
    // empty levels are levels like any other
    ['/', '/', true],
    ['//', '//', true],
    ['/', '//', false],
    ['a//b', 'a//b', true],
    ['a//b', 'a/b', false],
    ['a/', 'a', false],
  ];

  it.each(table)('%j against %j -> %s', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });

  it('[MQTT-4.7.2-1] does not match # with a topic name starting with $', () => {
    expect(topicMatches('#', '$SYS')).toBe(false);
    expect(topicMatches('#', '$SYS/broker/clients')).toBe(false);
  });

  it('[MQTT-4.7.2-1] does not match +/monitor/Clients with $SYS/monitor/Clients', () => {
    expect(topicMatches('+/monitor/Clients', '$SYS/monitor/Clients')).toBe(false);
    expect(topicMatches('+', '$SYS')).toBe(false);
    expect(topicMatches('+/#', '$SYS/x')).toBe(false);
  });

  it('[MQTT-4.7.2-1] matches $SYS/# and $SYS/monitor/+ with topic names under $SYS', () => {
    expect(topicMatches('$SYS/#', '$SYS/monitor/Clients')).toBe(true);
    expect(topicMatches('$SYS/#', '$SYS')).toBe(true);
    expect(topicMatches('$SYS/monitor/+', '$SYS/monitor/Clients')).toBe(true);
    expect(topicMatches('$SYS/monitor/Clients', '$SYS/monitor/Clients')).toBe(true);
  });

  it('[MQTT-4.7.2-1] lets a wildcard match a $ that is not at the start of the topic name', () => {
    expect(topicMatches('a/+', 'a/$b')).toBe(true);
    expect(topicMatches('a/#', 'a/$b/c')).toBe(true);
  });

  it('[MQTT-4.7.3-4] matches case-sensitively, without normalisation', () => {
    expect(topicMatches('ACCOUNTS', 'Accounts')).toBe(false);
    expect(topicMatches('Accounts', 'Accounts')).toBe(true);
    expect(topicMatches('sport/#', 'Sport/tennis')).toBe(false);
    expect(topicMatches('$sys/#', '$SYS/monitor')).toBe(false);
    // U+00E9 versus e + U+0301: the same text in two Unicode normal forms, two different topics
    expect(topicMatches('caf\u00e9', 'cafe\u0301')).toBe(false);
  });
});

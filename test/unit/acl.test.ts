import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AclSyntaxError, filterCovers, filtersOverlap, parseAcl, parseAclRule, SubjectAcl, substitute } from '../../shared/security/acl';
import { topicMatches } from '../../shared/protocol/topic';

describe('ACL rules', () => {
  it('parses access words, mosquitto keywords, and a bare filter as readwrite', () => {
    expect(parseAcl('readwrite devices/%u/#\npattern read public/#\ntopic deny public/x\n# a comment\n\nsensors/+/temp')).toEqual([
      { access: 'readwrite', filter: 'devices/%u/#' },
      { access: 'read', filter: 'public/#' },
      { access: 'deny', filter: 'public/x' },
      { access: 'readwrite', filter: 'sensors/+/temp' },
    ]);
  });

  it('refuses a rule whose filter is not a valid topic filter, saying which', () => {
    expect(() => parseAclRule('read a/#/b')).toThrow(AclSyntaxError);
    expect(() => parseAclRule('read a/#/b')).toThrow(/"read a\/#\/b"/);
  });

  it('substitutes %u and %c, and refuses values that would widen the rule (CVE-2017-7650)', () => {
    expect(substitute('d/%u/%c/#', { username: 'alice', clientId: 'c1' })).toBe('d/alice/c1/#');
    expect(substitute('d/%u/#', { clientId: 'c1' })).toBeUndefined();
    for (const bad of ['#', '+', 'a/b', '']) {
      expect(substitute('d/%u/#', { username: bad, clientId: 'c' })).toBeUndefined();
      expect(substitute('d/%c/#', { username: 'u', clientId: bad })).toBeUndefined();
    }
  });

  it('substitutes %u and %c in one pass: a user name or client id holding a placeholder stays literal', () => {
    expect(substitute('users/%u/#', { username: '%c', clientId: 'bob' })).toBe('users/%c/#');
    expect(substitute('d/%u/%c', { username: 'x%c', clientId: 'y%u' })).toBe('d/x%c/y%u');
    expect(substitute('d/%c/%u', { username: 'u', clientId: '%u' })).toBe('d/%u/u');
    // a user named %c cannot reach bob's tree by connecting with client id bob
    const acl = new SubjectAcl(parseAcl('readwrite users/%u/#'), { username: '%c', clientId: 'bob' });
    expect(acl.canSubscribe('users/bob/#')).toBe(false);
    expect(acl.canPublish('users/bob/x')).toBe(false);
    expect(acl.canPublish('users/%c/x')).toBe(true);
  });

  it("a value starting with '$' does not apply (a grant) or denies everything (a deny): %u/# never becomes $SYS/#", () => {
    expect(substitute('%u/#', { username: '$SYS', clientId: 'c' })).toBeUndefined();
    expect(substitute('d/%c', { username: 'u', clientId: '$x' })).toBeUndefined();
    const acl = new SubjectAcl(parseAcl('readwrite %u/#\nreadwrite %c/#'), { username: '$SYS', clientId: '$share' });
    expect(acl.canSubscribe('$SYS/#')).toBe(false);
    expect(acl.canReceive('$SYS/broker/load')).toBe(false);
    expect(acl.canPublish('$share/x')).toBe(false);
    const denied = new SubjectAcl(parseAcl('readwrite #\ndeny private/%c/#'), { clientId: '$x' });
    expect(denied.canPublish('a')).toBe(false);
    // a '$' further in is an ordinary character
    expect(substitute('d/%u', { username: 'a$b', clientId: 'c' })).toBe('d/a$b');
  });

  it('grants write for publish, read for subscribe; deny wins whatever the order', () => {
    const acl = new SubjectAcl(parseAcl('deny public/secret/#\nreadwrite devices/%u/#\nread public/#'), { username: 'alice', clientId: 'c1' });
    expect(acl.canPublish('devices/alice/temp')).toBe(true);
    expect(acl.canPublish('devices/bob/temp')).toBe(false);
    expect(acl.canPublish('public/news')).toBe(false);
    expect(acl.canSubscribe('public/news/+')).toBe(true);
    // 'public/+' matches 'public/secret', which 'public/secret/#' denies (a '#' matches its parent):
    // granted, with the deny rule to filter its deliveries
    expect(acl.canSubscribe('public/+')).toBe(true);
    expect(acl.denialsFor('public/+')).toEqual(['public/secret/#']);
    expect(acl.canReceive('public/news')).toBe(true);
    expect(acl.canReceive('public/secret/plans')).toBe(false);
    // public/# overlaps the denied subtree: granted (as mosquitto does), each delivery filtered
    expect(acl.canSubscribe('public/#')).toBe(true);
    expect(acl.denialsFor('public/#')).toEqual(['public/secret/#']);
    // a filter the deny rule covers entirely is refused
    expect(acl.canSubscribe('public/secret/#')).toBe(false);
    expect(acl.canSubscribe('public/secret/+/x')).toBe(false);
    expect(acl.canSubscribe('devices/alice/#')).toBe(true);
    expect(acl.denialsFor('devices/alice/#')).toEqual([]);
    expect(acl.canSubscribe('devices/+/temp')).toBe(false);
  });

  it('shared subscriptions need a $share rule naming the share: a plain read rule grants none', () => {
    const rules = parseAcl(['read jobs/#', 'read $share/workers/jobs/#', 'read $share/%u/reports/#', 'read $share/+/public/#', 'deny $share/+/public/secret/#'].join('\n'));
    const backend = new SubjectAcl(rules, { username: 'backend', clientId: 'b1' });
    expect(backend.canSubscribe('$share/workers/jobs/#')).toBe(true);
    expect(backend.canSubscribe('$share/workers/jobs/+/urgent')).toBe(true);
    expect(backend.canSubscribe('$share/others/jobs/#')).toBe(false);
    expect(backend.canSubscribe('$share/workers/#')).toBe(false);
    expect(backend.canSubscribe('$share/backend/reports/#')).toBe(true);
    expect(backend.canSubscribe('$share/alice/reports/#')).toBe(false);
    expect(backend.canSubscribe('$share/anyone/public/x')).toBe(true);
    // a $share deny overlapping the filter, for that share name or any
    expect(backend.canSubscribe('$share/anyone/public/secret/x')).toBe(false);
    expect(backend.canSubscribe('$share/anyone/public/#')).toBe(false);
    // $share rules grant nothing outside shared subscriptions
    expect(backend.canSubscribe('public/x')).toBe(false);
    expect(backend.canReceive('public/x')).toBe(false);
    expect(backend.canPublish('$share/workers/jobs/1')).toBe(false);

    const reader = new SubjectAcl(parseAcl('read jobs/#'), { username: 'reader', clientId: 'r1' });
    expect(reader.canSubscribe('jobs/#')).toBe(true);
    expect(reader.canSubscribe('$share/workers/jobs/#')).toBe(false);
    expect(reader.canSubscribe('$share/reader/jobs/#')).toBe(false);
    // a plain deny applies to the filter of a shared subscription too
    const denied = new SubjectAcl(parseAcl('read $share/+/jobs/#\ndeny jobs/hr/#'), { clientId: 'c' });
    expect(denied.canSubscribe('$share/w/jobs/x/+')).toBe(true);
    expect(denied.canSubscribe('$share/w/jobs/#')).toBe(false);
  });

  it('refuses $share rules that say write, lack a filter, or have a wildcard for part of a share name', () => {
    expect(() => parseAclRule('write $share/workers/jobs/#')).toThrow(/read or deny, not write/);
    expect(() => parseAclRule('read $share/workers')).toThrow(/\$share\/<share name>\/<filter>/);
    expect(() => parseAclRule('read $share//jobs')).toThrow(/\$share\/<share name>\/<filter>/);
    expect(() => parseAclRule('read $share/#')).toThrow(/\$share\/<share name>\/<filter>/);
    expect(() => parseAclRule('read $share/a+/jobs')).toThrow(/the share name is a name, %u, %c or \+/);
    expect(() => parseAclRule('read $share/w/jobs/#/x')).toThrow(AclSyntaxError);
    expect(parseAclRule('$share/%c/jobs/#')).toEqual({ access: 'readwrite', filter: '$share/%c/jobs/#' });
  });

  it("[MQTT-4.7.2-1] a rule starting with a wildcard does not grant '$' topics", () => {
    const acl = new SubjectAcl(parseAcl('readwrite #'), { clientId: 'c' });
    expect(acl.canPublish('$SYS/x')).toBe(false);
    expect(acl.canSubscribe('$SYS/#')).toBe(false);
    expect(acl.canSubscribe('#')).toBe(true);
  });

  it('a deny rule that cannot be substituted denies everything (fails closed)', () => {
    const acl = new SubjectAcl(parseAcl('readwrite #\ndeny private/%u/#'), { clientId: 'anonymous' });
    expect(acl.canPublish('a')).toBe(false);
    expect(acl.canSubscribe('a')).toBe(false);
  });
});

// Small alphabets make collisions (and so interesting cases) likely.
const level = fc.constantFrom('a', 'b', '$s', '');
const topic = fc.array(level, { minLength: 1, maxLength: 4 }).map((levels) => levels.join('/'));
const filter = fc
  .tuple(fc.array(fc.constantFrom('a', 'b', '$s', '', '+'), { minLength: 1, maxLength: 3 }), fc.boolean())
  .map(([levels, hash]) => (hash ? [...levels, '#'] : levels).join('/'))
  .chain((f) => fc.constantFrom(f, '#', `+/${f}`));

/** Every topic over the alphabet up to five levels, one more than any filter above has before its '#': a witness for any case. */
const allTopics = (() => {
  const out: string[] = [];
  const grow = (prefix: string[]): void => {
    if (prefix.length > 0) out.push(prefix.join('/'));
    if (prefix.length < 5) for (const l of ['a', 'b', '$s', '', 'z']) grow([...prefix, l]);
  };
  grow([]);
  return out;
})();

describe('connect rules: client ids bound to identities', () => {
  it('parse as connect rules; %c is refused (it would match every client id)', () => {
    expect(parseAclRule('connect %u-*')).toEqual({ access: 'connect', filter: '%u-*' });
    expect(() => parseAclRule('connect %c')).toThrow(AclSyntaxError);
  });

  it('without connect rules any client id may connect; with them, only a matching one (%u, * for any run)', () => {
    expect(new SubjectAcl(parseAcl('readwrite devices/%u/#'), { username: 'alice', clientId: 'anything' }).canConnect()).toBe(true);
    const rules = parseAcl('connect %u-*\nconnect gateway-1\nreadwrite devices/%u/#');
    expect(new SubjectAcl(rules, { username: 'alice', clientId: 'alice-sensor' }).canConnect()).toBe(true);
    expect(new SubjectAcl(rules, { username: 'alice', clientId: 'gateway-1' }).canConnect()).toBe(true);
    expect(new SubjectAcl(rules, { username: 'mallory', clientId: 'alice-sensor' }).canConnect()).toBe(false);
    expect(new SubjectAcl(rules, { username: 'alice', clientId: 'alice.x' }).canConnect()).toBe(false);
    // Anonymous clients have no %u: only a rule without it can admit them.
    expect(new SubjectAcl(rules, { clientId: '-sensor' }).canConnect()).toBe(false);
    // Connect rules grant no topics.
    expect(new SubjectAcl(parseAcl('connect #'), { username: 'alice', clientId: '#' }).canSubscribe('#')).toBe(false);
  });
});

describe('filter algebra (fast-check, checked against topicMatches over every small topic)', () => {
  it('filterCovers(rule, f) holds exactly when every topic f matches, rule matches', () => {
    let runs = 0;
    fc.assert(
      fc.property(filter, filter, (rule, f) => {
        runs++;
        const expected = allTopics.every((t) => !topicMatches(f, t) || topicMatches(rule, t));
        expect(filterCovers(rule, f)).toBe(expected);
      }),
      { numRuns: 1000 },
    );
    console.log(`filterCovers: ${runs} pairs of filters tried`);
  });

  it('filtersOverlap(a, b) holds exactly when some topic matches both', () => {
    let runs = 0;
    fc.assert(
      fc.property(filter, filter, (a, b) => {
        runs++;
        const expected = allTopics.some((t) => topicMatches(a, t) && topicMatches(b, t));
        expect(filtersOverlap(a, b)).toBe(expected);
        expect(filtersOverlap(b, a)).toBe(expected);
      }),
      { numRuns: 1000 },
    );
    console.log(`filtersOverlap: ${runs} pairs of filters tried`);
  });

  it('a granted subscription, its deliveries filtered by the deny rules stored with it, receives exactly the topics canReceive allows', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('read', 'readwrite', 'deny'), filter), { maxLength: 4 }), filter, topic, (rules, f, t) => {
        const acl = new SubjectAcl(
          rules.map(([access, rf]) => ({ access: access as 'read', filter: rf })),
          { clientId: 'c' },
        );
        if (!acl.canSubscribe(f) || !topicMatches(f, t)) return;
        const skipped = acl.denialsFor(f).some((d) => topicMatches(d, t));
        expect(acl.canReceive(t)).toBe(!skipped);
      }),
      { numRuns: 1000 },
    );
  });
});

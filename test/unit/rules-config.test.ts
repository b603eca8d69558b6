import { describe, expect, it } from 'vitest';
import { parseRules, parseRulesText, republishesIntoItself, RulesConfigError } from '../../shared/rules/rule-config';

const hook = { type: 'http', url: 'http://127.0.0.1:9000/hook' };

function refusal(rules: unknown): string {
  try {
    parseRules(rules, 'rules.json');
  } catch (error) {
    expect(error).toBeInstanceOf(RulesConfigError);
    return (error as Error).message;
  }
  throw new Error('accepted');
}

describe('rules file', () => {
  it('accepts the simplest rule and names it by its position', () => {
    expect(parseRulesText(JSON.stringify([{ filter: 'sensors/+/temp', target: hook }]), 'rules.json')).toEqual([
      { name: 'rule-1', filter: 'sensors/+/temp', target: hook },
    ]);
  });

  it('accepts every target type with its fields', () => {
    const rules = parseRules(
      [
        { name: 'fn', filter: 'a/#', select: ['temp', 'device.id'], where: 'temp > 30', target: { type: 'lambda', function: 'telemetry' }, deadLetter: { type: 'sqs', queue: 'arn:aws:sqs:eu-west-1:123456789012:dlq' } },
        { name: 'q', filter: 'b', target: { type: 'sqs', queue: 'https://sqs.eu-west-1.amazonaws.com/123456789012/q' } },
        { name: 'k', filter: 'c/+', target: { type: 'kinesis', stream: 'telemetry', partitionKey: '${topic(2)}' } },
        { name: 'e', filter: 'd', target: { type: 'eventbridge', bus: 'fleet', source: 'fleet.mqtt', detailType: 'Reading' } },
        { name: 'r', filter: 'e/+', target: { type: 'republish', topic: 'copy/${topic(2)}', qos: 1 } },
        { name: 'h', filter: 'f', target: { ...hook, headers: { authorization: 'Bearer x' } }, deadLetter: { type: 'file', path: 'dead.jsonl' } },
      ],
      'rules.json',
    );
    expect(rules.map((r) => r.target.type)).toEqual(['lambda', 'sqs', 'kinesis', 'eventbridge', 'republish', 'http']);
  });

  it.each([
    [{ filter: 'a/#/b', target: hook }, `rules.json: rules[0].filter: "a/#/b" is not a topic filter ('#' must be the whole last level)`],
    [{ filter: 'a', target: { type: 'ftp', url: 'x' } }, 'rules.json: rules[0].target.type: "ftp" is not one of http, republish, lambda, sqs, kinesis, eventbridge, file'],
    [{ filter: 'a', target: { type: 'http' } }, 'rules.json: rules[0].target.url: missing'],
    [{ filter: 'a', target: { type: 'http', url: 'ftp://x' } }, 'rules.json: rules[0].target.url: "ftp://x" is not an http(s) URL'],
    [{ filter: 'a', target: { type: 'lambda' } }, 'rules.json: rules[0].target.function: missing'],
    [{ filter: 'a', target: { type: 'sqs', queue: 'q' } }, 'rules.json: rules[0].target.queue: "q" is neither a queue URL nor an ARN'],
    [{ filter: 'a', target: hook, colour: 'red' }, 'rules.json: rules[0]: unknown field "colour" (known: name, filter, select, where, target, deadLetter)'],
    [{ filter: 'a', target: { ...hook, method: 'PUT' } }, 'rules.json: rules[0].target: unknown field "method" (known: type, url, headers)'],
    [{ filter: 'a', target: hook, select: [] }, 'rules.json: rules[0].select: must be a non-empty array of field paths such as "device.id"'],
    [{ filter: 'a', target: hook, select: ['a..b'] }, 'rules.json: rules[0].select[0]: "a..b" is not a field path such as "device.id"'],
    [{ filter: 'a', target: { type: 'file', path: 'x' } }, 'rules.json: rules[0].target: "file" is a dead-letter destination only'],
    [{ filter: 'a', target: hook, deadLetter: { type: 'republish', topic: 'x' } }, 'rules.json: rules[0].deadLetter.type: "republish" is not one of sqs, lambda, kinesis, eventbridge, http, file'],
    [{ filter: 'a/+', target: { type: 'republish', topic: 'a/${topic(1)}' } }, 'rules.json: rules[0].target.topic: "a/${topic(1)}" can match the rule\'s own filter "a/+" (a loop)'],
    [{ filter: 'a', target: { type: 'republish', topic: 'b/${user}' } }, 'rules.json: rules[0].target.topic: ${user} is not ${topic}, ${topic(n)} or ${clientId}'],
    [{ filter: 'a', target: { type: 'republish', topic: 'b', qos: 2 } }, 'rules.json: rules[0].target.qos: must be 0 or 1'],
  ])('refuses %j in one line', (rule, message) => {
    expect(refusal([rule])).toBe(message);
  });

  it('refuses a where that is not JSONata, naming the expression', () => {
    expect(refusal([{ filter: 'a', target: hook, where: 'temp >' }])).toMatch(/^rules\.json: rules\[0\]\.where: "temp >" is not a JSONata expression \(.+\)$/);
  });

  it('refuses what is not an array, not JSON, or names a rule twice', () => {
    expect(refusal({ filter: 'a' })).toBe('rules.json: rules must be a JSON array of rules');
    expect(() => parseRulesText('[{', 'rules.json')).toThrow(/^rules\.json: not JSON \(/);
    expect(refusal([{ name: 'x', filter: 'a', target: hook }, { name: 'x', filter: 'b', target: hook }])).toBe('rules.json: two rules are named "x"');
  });
});

describe('republish loop check', () => {
  it.each([
    ['sensors/+/temp', 'alerts/${topic(2)}', false],
    ['sensors/+/temp', 'sensors/${topic(2)}/temp', true],
    ['sensors/#', 'sensors', true],
    ['sensors/#', 'copy/${topic}', false],
    ['#', 'anything', true],
    ['a/b', 'a/b/c', false],
    ['a/+', 'x/${clientId}', false],
    ['a/+', 'a/${clientId}', true],
  ])('filter %s, template %s: %s', (filter, template, loops) => {
    expect(republishesIntoItself(filter, template)).toBe(loops);
  });
});

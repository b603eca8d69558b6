import { describe, expect, it } from 'vitest';
import { parseRules } from '../../shared/rules/rule-config';
import { CompiledRule, expandTemplate, selectFields, type RuleMessage } from '../../shared/rules/rule-match';

function rule(fields: Record<string, unknown>): CompiledRule {
  return new CompiledRule(parseRules([{ filter: 'sensors/+/temp', target: { type: 'http', url: 'http://127.0.0.1/h' }, ...fields }], 'test')[0]!);
}

function message(payload: string | Buffer, topic = 'sensors/d1/temp'): RuleMessage {
  return { topic, payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload), qos: 1, retain: false, clientId: 'd1', timestamp: 1_700_000_000_000 };
}

describe('rule matching', () => {
  it('fires for a topic its filter matches, with the message as the target receives it', async () => {
    const event = await rule({}).evaluate({ ...message('21.5'), userProperties: { site: 'north' } });
    expect(event).toEqual({
      rule: 'rule-1',
      topic: 'sensors/d1/temp',
      payload: '21.5',
      encoding: 'utf8',
      qos: 1,
      retain: false,
      clientId: 'd1',
      userProperties: { site: 'north' },
      timestamp: 1_700_000_000_000,
    });
    expect(await rule({}).evaluate(message('21.5', 'sensors/d1/humidity'))).toBeUndefined();
  });

  it('passes a payload that is not UTF-8 through as base64 when the rule neither selects nor filters', async () => {
    const event = await rule({}).evaluate(message(Buffer.from([0xff, 0x00, 0xfe])));
    expect(event).toMatchObject({ payload: '/wD+', encoding: 'base64' });
  });

  it('does not fire a rule with select or where for a payload that is not JSON', async () => {
    expect(await rule({ select: ['temp'] }).evaluate(message('hot'))).toBeUndefined();
    expect(await rule({ where: 'temp > 1' }).evaluate(message(Buffer.from([0xff])))).toBeUndefined();
  });

  it('fires only when where is true', async () => {
    const hot = rule({ where: 'temp > 30 and $topic = "sensors/d1/temp"' });
    expect(await hot.evaluate(message('{"temp": 35}'))).toBeDefined();
    expect(await hot.evaluate(message('{"temp": 20}'))).toBeUndefined();
    // A type error in the expression: the rule does not fire.
    expect(await rule({ where: 'temp + 1 > 2' }).evaluate(message('{"temp": "warm"}'))).toBeUndefined();
    expect(await rule({ where: '$clientId = "d1"' }).evaluate(message('{}'))).toBeDefined();
  });

  it('selects fields, nested as in the payload, leaving out missing ones', async () => {
    const event = await rule({ select: ['temp', 'device.id', 'absent.field'] }).evaluate(message('{"temp": 21, "device": {"id": "d1", "fw": 3}, "extra": 1}'));
    expect(event?.selected).toEqual({ temp: 21, device: { id: 'd1' } });
    expect(selectFields([1, 2], ['0'])).toEqual({});
  });
});

describe('templates', () => {
  it('replace the topic, its levels from 1 and the client id', () => {
    const event = { topic: 'sensors/d1/temp', clientId: 'c' };
    expect(expandTemplate('alerts/${topic(2)}/${topic(3)}', event)).toBe('alerts/d1/temp');
    expect(expandTemplate('${topic}|${clientId}|${topic(9)}', event)).toBe('sensors/d1/temp|c|');
  });
});

import { describe, expect, it } from 'vitest';
import { parseRules } from '../../shared/rules/rule-config';
import { RuleDeliveryError, RuleEngine } from '../../shared/rules/rule-engine';
import type { RuleMessage } from '../../shared/rules/rule-match';
import type { EntryFailure, TargetEntry, TargetSender } from '../../shared/rules/target-port';
import { createJsonLogger } from '../../shared/util/logger';

/** A target that records its calls and answers each with what `answer` says. */
class FakeTarget implements TargetSender {
  readonly calls: TargetEntry[][] = [];
  constructor(
    private readonly answer: (entries: readonly TargetEntry[], call: number) => EntryFailure[] | Error = () => [],
    readonly maxEntries = 10,
    readonly maxBytes = 256 * 1024,
  ) {}
  async send(entries: readonly TargetEntry[]): Promise<EntryFailure[]> {
    this.calls.push([...entries]);
    const answer = this.answer(entries, this.calls.length);
    if (answer instanceof Error) throw answer;
    return answer;
  }
}

const log = createJsonLogger('error');
const retry = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1 };

function engine(target: FakeTarget, deadLetter?: FakeTarget, counts: Record<string, number> = {}) {
  const rules = parseRules(
    [{ name: 'temps', filter: 'sensors/+/temp', target: { type: 'sqs', queue: 'arn:aws:sqs:eu-west-1:1:q' }, ...(deadLetter ? { deadLetter: { type: 'sqs', queue: 'arn:aws:sqs:eu-west-1:1:dlq' } } : {}) }],
    'test',
  );
  return new RuleEngine({
    rules,
    targets: (config) => (config.type === 'sqs' && config.queue.endsWith('dlq') ? deadLetter! : target),
    log,
    retry,
    sleep: async () => {},
    count: (what, n) => (counts[what] = (counts[what] ?? 0) + n),
  });
}

function message(device: string, qos: 0 | 1 = 1): RuleMessage {
  return { topic: `sensors/${device}/temp`, payload: Buffer.from(`{"t":1}`), qos, retain: false, clientId: device, timestamp: 1 };
}

const bodyTopics = (calls: TargetEntry[][]) => calls.map((call) => call.map((e) => e.topic));

describe('rule engine', () => {
  it('sends the messages routed in one turn in one call per target, split at its batch size', async () => {
    const target = new FakeTarget(() => [], 2);
    const rules = engine(target);
    const outcomes = await Promise.all(['a', 'b', 'c'].map((d) => rules.route(message(d))));
    await Promise.all(outcomes.map((o) => o.accepted));
    expect(bodyTopics(target.calls)).toEqual([['sensors/a/temp', 'sensors/b/temp'], ['sensors/c/temp']]);
    expect(target.calls[0]![0]!.body).toMatchObject({ rule: 'temps', topic: 'sensors/a/temp', payload: '{"t":1}', encoding: 'utf8', clientId: 'a' });
  });

  it('does not send a message no rule matches, and accepts it at once', async () => {
    const target = new FakeTarget();
    const outcome = await engine(target).route({ ...message('a'), topic: 'other' });
    await outcome.accepted;
    expect(target.calls).toEqual([]);
  });

  it('retries only the entries a batch call refused', async () => {
    const target = new FakeTarget((_entries, call) => (call === 1 ? [{ index: 1, error: 'Throttled', retryable: true }] : []));
    const counts: Record<string, number> = {};
    const rules = engine(target, undefined, counts);
    const outcomes = await Promise.all(['a', 'b', 'c'].map((d) => rules.route(message(d))));
    await Promise.all(outcomes.map((o) => o.accepted));
    expect(bodyTopics(target.calls)).toEqual([['sensors/a/temp', 'sensors/b/temp', 'sensors/c/temp'], ['sensors/b/temp']]);
    expect(counts).toEqual({ delivered: 3 });
  });

  it('dead-letters what keeps failing, with the reason, and then accepts the message', async () => {
    const target = new FakeTarget(() => new Error('down'));
    const deadLetter = new FakeTarget();
    const counts: Record<string, number> = {};
    const outcome = await engine(target, deadLetter, counts).route(message('a'));
    await outcome.accepted;
    expect(target.calls).toHaveLength(3);
    expect(deadLetter.calls).toHaveLength(1);
    expect(deadLetter.calls[0]![0]!.body).toMatchObject({ deadLetter: { rule: 'temps', error: 'Error: down' }, message: { topic: 'sensors/a/temp' } });
    expect(counts).toEqual({ deadLettered: 1 });
  });

  it('does not retry an entry refused for good, and dead-letters it at once', async () => {
    const target = new FakeTarget(() => [{ index: 0, error: 'InvalidParameterValue', retryable: false }]);
    const deadLetter = new FakeTarget();
    await (await engine(target, deadLetter).route(message('a'))).accepted;
    expect(target.calls).toHaveLength(1);
    expect(deadLetter.calls).toHaveLength(1);
  });

  it('rejects the message when neither the target nor the dead-letter destination takes it', async () => {
    const counts: Record<string, number> = {};
    const outcome = await engine(new FakeTarget(() => new Error('down')), new FakeTarget(() => new Error('also down')), counts).route(message('a'));
    await expect(outcome.accepted).rejects.toThrow(RuleDeliveryError);
    await expect(outcome.accepted).rejects.toThrow('rule temps: Error: also down (the dead-letter destination refused them too)');
    expect(counts).toEqual({ failed: 1 });
  });

  it('rejects without a dead-letter destination, and settles once every delivery ended', async () => {
    const rules = engine(new FakeTarget(() => new Error('down')));
    const outcome = await rules.route(message('a', 0));
    await rules.settled();
    await expect(outcome.accepted).rejects.toThrow('rule temps: Error: down (no dead-letter destination)');
  });

  it("settles an invocation's own deliveries, not another's still under way", async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const sender: TargetSender = {
      maxEntries: 10,
      maxBytes: 1024,
      send: async (entries) => {
        if (entries[0]!.topic === 'sensors/slow/temp') await held;
        return [];
      },
    };
    const scopes = { a: new Set<Promise<unknown>>(), b: new Set<Promise<unknown>>() };
    let current: keyof typeof scopes = 'a';
    const rules = new RuleEngine({
      rules: parseRules([{ filter: 'sensors/+/temp', target: { type: 'http', url: 'http://127.0.0.1/h' } }], 'test'),
      targets: () => sender,
      log,
      scope: () => scopes[current],
    });
    await rules.route(message('slow', 0));
    await new Promise((resolve) => setImmediate(resolve));
    current = 'b';
    await rules.route(message('fast', 0));
    await rules.settled();
    expect(scopes.b.size).toBe(0);
    expect(scopes.a.size).toBe(1);
    release();
    current = 'a';
    await rules.settled();
    expect(scopes.a.size).toBe(0);
  });
});

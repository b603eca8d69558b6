/** The harness's own rule targets: a Lambda function from a module path, run in-process, and a dead-letter file. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { localRuleTargets } from '../../local/rule-targets';
import { parseRules } from '../../shared/rules/rule-config';
import { eventually } from '../support/clients';
import { createJsonLogger } from '../../shared/util/logger';

const dir = mkdtempSync(path.join(os.tmpdir(), 'local-targets-'));
const log = createJsonLogger('error');
const entry = { topic: 'fleet/t1/telemetry', clientId: 't1', body: { topic: 'fleet/t1/telemetry', payload: '{}' } };

describe('local rule targets', () => {
  it('runs the handler a lambda target names by module path, relative to the rules file, with the batch as Lambda passes it', async () => {
    const seen = path.join(dir, 'seen.json');
    writeFileSync(path.join(dir, 'consumer.mjs'), `import { writeFileSync } from 'node:fs';\nexport const handler = async (event) => writeFileSync(${JSON.stringify(seen)}, JSON.stringify(event));\n`);
    const rules = parseRules([{ filter: 'fleet/+/telemetry', target: { type: 'lambda', function: './consumer.mjs' } }], 'test');
    const factory = await localRuleTargets(rules, { baseDir: dir, log });
    const sender = factory(rules[0]!.target as never, rules[0]!);
    expect(await sender.send([entry])).toEqual([]);
    await eventually(() => {
      try {
        return readFileSync(seen, 'utf8').length > 0;
      } catch {
        return false;
      }
    }, 'the handler to run');
    expect(JSON.parse(readFileSync(seen, 'utf8'))).toEqual({ messages: [entry.body] });
  });

  it('refuses a module that exports no handler, at start', async () => {
    writeFileSync(path.join(dir, 'empty.mjs'), 'export const other = 1;\n');
    const rules = parseRules([{ filter: 'a', target: { type: 'lambda', function: './empty.mjs' } }], 'test');
    await expect(localRuleTargets(rules, { baseDir: dir, log })).rejects.toThrow('lambda target "./empty.mjs" exports no handler function');
  });

  it('appends a JSON line per dead letter to a file', async () => {
    const file = path.join(dir, 'dead.jsonl');
    const rules = parseRules([{ filter: 'a', target: { type: 'http', url: 'http://127.0.0.1:1/x' }, deadLetter: { type: 'file', path: file } }], 'test');
    const sender = (await localRuleTargets(rules, { log }))(rules[0]!.deadLetter as never, rules[0]!);
    await sender.send([entry, entry]);
    expect(readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line))).toEqual([entry.body, entry.body]);
  });
});

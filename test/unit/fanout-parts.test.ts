/** splitFanout: parts bounded by deliveries and by the bytes of their job, each payload carried once per job. */
import { describe, expect, it } from 'vitest';
import type { Delivery } from '../../shared/broker/actions';
import { deliveriesOf, MAX_JOB_BYTES, splitFanout } from '../../shared/broker/fanout';
import { LAMBDA_SYNC_PAYLOAD_BYTES } from '../../local/aws-limits';

const deps = (fanoutPartSize: number) => ({ config: { fanoutPartSize }, fanout: { run: async () => undefined } }) as unknown as Parameters<typeof splitFanout>[0];

function deliveryTo(clientId: string, payload: Buffer): Delivery {
  return { recipient: { clientId, connectionId: `${clientId}-c`, protocolVersion: 4 }, message: { clientId: 'publisher', topic: 't/1', payload, qos: 1, retain: false } } as unknown as Delivery;
}

describe('splitFanout', () => {
  it('one 250 KB message to 500 subscribers: parts of 250 deliveries, each job carrying the payload once', () => {
    const payload = Buffer.alloc(250 * 1024, 7);
    const deliveries = Array.from({ length: 500 }, (_, i) => deliveryTo(`s${i}`, payload));
    const { own, jobs } = splitFanout(deps(250), deliveries);
    expect(own).toHaveLength(250);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]!.payloads).toHaveLength(1);
    expect(Buffer.byteLength(JSON.stringify(jobs[0]))).toBeLessThan(LAMBDA_SYNC_PAYLOAD_BYTES);
    const back = deliveriesOf(jobs[0]!);
    expect(back.map((d) => d.recipient.clientId)).toEqual(deliveries.slice(250).map((d) => d.recipient.clientId));
    expect(back.every((d) => d.message.payload.equals(payload))).toBe(true);
  });

  it('many different large messages: a part ends before its job passes MAX_JOB_BYTES, none over the Invoke limit', () => {
    // 60 subscribers, each its own 200 KB message (a retained replay, say): 12 MB in all.
    const deliveries = Array.from({ length: 60 }, (_, i) => deliveryTo(`s${i}`, Buffer.alloc(200 * 1024, i)));
    const { own, jobs } = splitFanout(deps(20), deliveries);
    expect(own).toHaveLength(20);
    expect(jobs.length).toBeGreaterThan(2);
    for (const job of jobs) expect(Buffer.byteLength(JSON.stringify(job))).toBeLessThanOrEqual(MAX_JOB_BYTES);
    expect(jobs.flatMap((job) => deliveriesOf(job).map((d) => d.recipient.clientId))).toEqual(deliveries.slice(20).map((d) => d.recipient.clientId));
  });

  it("keeps a client's deliveries in one part, in order", () => {
    const deliveries = ['a', 'b', 'c'].flatMap((client) => [1, 2, 3].map((n) => deliveryTo(client, Buffer.from(`${client}${n}`))));
    const { own, jobs } = splitFanout(deps(4), deliveries);
    const parts = [own, ...jobs.map(deliveriesOf)].map((part) => part.map((d) => d.message.payload.toString()));
    expect(parts).toEqual([['a1', 'a2', 'a3'], ['b1', 'b2', 'b3'], ['c1', 'c2', 'c3']]);
  });
});

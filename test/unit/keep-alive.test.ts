/** The keep-alive rules the CONNECT handler and the listener share (shared/broker/keep-alive.ts). */
import { describe, expect, it } from 'vitest';
import { heldKeepAlive, keepAliveCeiling, serverKeepAlive } from '../../shared/broker/keep-alive';

describe('keep-alive rules', () => {
  it("the ceiling is the door's limit, or the broker's maximum when lower", () => {
    expect(keepAliveCeiling(300, undefined)).toBe(300);
    expect(keepAliveCeiling(300, 60)).toBe(60);
    expect(keepAliveCeiling(300, 1000)).toBe(300);
  });

  it('[MQTT-3.2.2-21] a 5.0 client asking for more than the ceiling, or 0, is told it; [MQTT-3.2.2-22] one within it keeps its own', () => {
    expect([0, 61, 60, 1].map((requested) => serverKeepAlive(5, requested, 60))).toEqual([60, 60, undefined, undefined]);
    expect([0, 61, 60, 1].map((requested) => heldKeepAlive(5, requested, 300, 60))).toEqual([60, 60, 60, 1]);
  });

  it("a 3.1.1 client, which cannot be told, is held to the broker's maximum; without one, to its own keep-alive", () => {
    expect(serverKeepAlive(4, 0, 60)).toBeUndefined();
    expect([0, 61, 60, 1].map((requested) => heldKeepAlive(4, requested, 300, 60))).toEqual([60, 60, 60, 1]);
    expect([0, 1000].map((requested) => heldKeepAlive(4, requested, 300, undefined))).toEqual([0, 1000]);
  });
});

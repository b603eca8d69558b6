import { expect } from 'vitest';
import { MqttProtocolError } from '../../shared/protocol/reason-codes';

/** Asserts that `action` throws an MqttProtocolError carrying `reasonCode`. */
export function expectProtocolError(action: () => unknown, reasonCode: number): void {
  let thrown: unknown;
  try {
    action();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(MqttProtocolError);
  expect((thrown as MqttProtocolError).reasonCode).toBe(reasonCode);
}

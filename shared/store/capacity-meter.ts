/** Counts DynamoDB calls and the capacity units they consumed, for the benchmark. */
export interface ConsumedCapacityLike {
  ReadCapacityUnits?: number;
  WriteCapacityUnits?: number;
  CapacityUnits?: number;
}

export class CapacityMeter {
  calls = 0;
  readUnits = 0;
  writeUnits = 0;

  record(kind: 'read' | 'write', consumed: ConsumedCapacityLike | readonly ConsumedCapacityLike[] | undefined): void {
    this.calls += 1;
    for (const entry of consumed === undefined ? [] : Array.isArray(consumed) ? consumed : [consumed]) {
      const units = (entry as ConsumedCapacityLike).CapacityUnits ?? 0;
      if (kind === 'read') this.readUnits += units;
      else this.writeUnits += units;
    }
  }

  /**
   * A TransactWriteItems call. AWS bills each item of a write transaction at twice a standard
   * write; DynamoDB Local reports standard units, so the meter (the benchmark's) counts them twice.
   */
  recordTransaction(consumed: ConsumedCapacityLike | readonly ConsumedCapacityLike[] | undefined): void {
    this.record('write', consumed);
    this.calls -= 1;
    this.record('write', consumed);
  }

  /**
   * A write whose condition failed: DynamoDB still charges it (at least one write unit), but the
   * SDK error carries no ConsumedCapacity, so one unit is counted.
   */
  recordFailedWrite(): void {
    this.calls += 1;
    this.writeUnits += 1;
  }

  snapshot(): { calls: number; readUnits: number; writeUnits: number } {
    return { calls: this.calls, readUnits: this.readUnits, writeUnits: this.writeUnits };
  }
}

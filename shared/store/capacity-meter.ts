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

  snapshot(): { calls: number; readUnits: number; writeUnits: number } {
    return { calls: this.calls, readUnits: this.readUnits, writeUnits: this.writeUnits };
  }
}

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
   * A TransactWriteItems call, given its items. AWS bills each item of a write transaction at two
   * write units per KB; DynamoDB Local reports far less, so the units are counted here from the
   * items' sizes (an update or delete, whose item is not at hand, as one KB).
   */
  recordTransaction(items: ReadonlyArray<{ Put?: { Item?: Record<string, unknown> } }>): void {
    this.calls += 1;
    for (const item of items) this.writeUnits += 2 * Math.max(1, Math.ceil((item.Put?.Item ? itemSize(item.Put.Item) : 1) / 1024));
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

/** An item's size as DynamoDB counts it, closely enough: attribute names plus values (numbers at most 21 bytes). */
function itemSize(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (typeof value === 'number') return 21;
  if (typeof value === 'boolean' || value === null || value === undefined) return 1;
  if (value instanceof Uint8Array) return value.length;
  if (Array.isArray(value)) return 3 + value.reduce((sum: number, element) => sum + 1 + itemSize(element), 0);
  return 3 + Object.entries(value as Record<string, unknown>).reduce((sum, [name, element]) => sum + Buffer.byteLength(name) + 1 + itemSize(element), 0);
}

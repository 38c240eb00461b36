// Where records go: one interface. The name -> sink map is in index.ts (so no sink imports it back).
export interface Sink<R> {
  write(record: R): void;
  close(): void;
}

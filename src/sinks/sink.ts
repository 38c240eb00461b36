// Where records go. One interface; commands pick sinks by name.
import { NdjsonSink } from './ndjson.js';
import { TableSink, type Column } from './table.js';

export interface Sink<R> {
  write(record: R): void;
  close(): void;
}

export type SinkName = 'table' | 'ndjson';

export function makeSink<R extends object>(name: SinkName, out: NodeJS.WritableStream, columns: Column<R>[]): Sink<R> {
  return name === 'ndjson' ? new NdjsonSink<R>(out) : new TableSink<R>(out, columns);
}

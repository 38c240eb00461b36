// Commands pick a sink by name.
import type { Sink } from './sink.js';
import { NdjsonSink } from './ndjson.js';
import { TableSink, type Column } from './table.js';

export type { Sink } from './sink.js';
export type SinkName = 'table' | 'ndjson';

export function makeSink<R extends object>(name: SinkName, out: NodeJS.WritableStream, columns: Column<R>[]): Sink<R> {
  return name === 'ndjson' ? new NdjsonSink<R>(out) : new TableSink<R>(out, columns);
}

// One JSON object per line, for machines (jq, log shippers, the collector).
import type { Sink } from './sink.js';

export class NdjsonSink<R> implements Sink<R> {
  constructor(private readonly out: NodeJS.WritableStream) {}

  write(record: R): void {
    this.out.write(`${JSON.stringify(record)}\n`);
  }

  close(): void { /* nothing buffered */ }
}

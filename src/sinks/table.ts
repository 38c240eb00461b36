// A live table for people: a header once, then a row per record as it comes, columns sized
// for their usual content (a wider value just pushes the row; it is never cut).
import type { Sink } from './sink.js';

export interface Column<R> { title: string; width: number; value: (r: R) => string | number | null | undefined }

export function formatRow(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join(' ').trimEnd();
}

export class TableSink<R> implements Sink<R> {
  private headed = false;

  constructor(private readonly out: NodeJS.WritableStream, private readonly columns: Column<R>[]) {}

  write(record: R): void {
    const widths = this.columns.map((c) => c.width);
    if (!this.headed) {
      this.out.write(`${formatRow(this.columns.map((c) => c.title), widths)}\n`);
      this.headed = true;
    }
    this.out.write(`${formatRow(this.columns.map((c) => String(c.value(record) ?? '-')), widths)}\n`);
  }

  close(): void { /* rows are written as they come */ }
}

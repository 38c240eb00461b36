// An ingest request body (NDJSON, optionally gzip) -> validated rows, line by line as it streams
// in. The byte limit is checked on every chunk, before and after decompression (a small gzip
// body can inflate to gigabytes), so an oversized body is refused without ever being held.
import type { IncomingMessage } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import { TcplensError } from '../errors.js';
import { recordToRow, type CapabilitySchema, type EventRow } from './schema.js';

export const MAX_LINE_BYTES = 256 * 1024;

export function tooLarge(limit: number): TcplensError {
  return new TcplensError('TCPLENS_ERR_TOO_LARGE', `request body larger than ${limit} bytes`,
    'send smaller batches (tcplens agents cut them well below the limit), or raise the collector\'s --max-body');
}

/** Rows of the complete lines so far; the caller feeds text and ends it. Pure, so it is unit-tested alone. */
export class NdjsonRows {
  readonly rows: EventRow[] = [];
  private partial = '';
  private line = 0;

  constructor(private readonly schema: CapabilitySchema) {}

  push(text: string): void {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      this.take(this.partial + text.slice(start, nl));
      this.partial = '';
      start = nl + 1;
    }
    this.partial += text.slice(start);
    if (this.partial.length > MAX_LINE_BYTES) {
      throw new TcplensError('TCPLENS_ERR_BAD_EVENT', `line ${this.line + 1}: longer than ${MAX_LINE_BYTES} bytes`, 'one event per line; no record is that long');
    }
  }

  end(): EventRow[] {
    if (this.partial.length) this.take(this.partial);
    this.partial = '';
    return this.rows;
  }

  private take(raw: string): void {
    this.line++;
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (text.trim() === '') return;
    let rec: unknown;
    try {
      rec = JSON.parse(text);
    } catch (e) {
      throw new TcplensError('TCPLENS_ERR_BAD_EVENT', `line ${this.line}: not JSON (${(e as Error).message})`, 'the body is NDJSON: one JSON object per line');
    }
    this.rows.push(recordToRow(this.schema, rec, `line ${this.line}`));
  }
}

/** Reads and validates the whole body; rejects with a TcplensError at the first problem. */
export function readNdjsonBody(req: IncomingMessage, schema: CapabilitySchema, maxBytes: number): Promise<EventRow[]> {
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity' && encoding !== 'gzip') {
    return Promise.reject(new TcplensError('TCPLENS_ERR_BAD_EVENT', `content-encoding ${encoding.slice(0, 40)} is not supported`, 'send the body as is, or gzip it (Content-Encoding: gzip)'));
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) return Promise.reject(tooLarge(maxBytes));
  return new Promise((resolve, reject) => {
    const parser = new NdjsonRows(schema);
    const decoder = new StringDecoder('utf8');
    let raw = 0, inflated = 0, done = false;
    const gunzip = encoding === 'gzip' ? createGunzip() : null;
    const fail = (e: unknown) => {
      if (done) return;
      done = true;
      req.unpipe();
      gunzip?.destroy();
      reject(e);
    };
    const text = (chunk: Buffer) => {
      if (done) return;
      inflated += chunk.length;
      if (inflated > maxBytes) return fail(tooLarge(maxBytes));
      try { parser.push(decoder.write(chunk)); } catch (e) { fail(e); }
    };
    const finish = () => {
      if (done) return;
      try {
        parser.push(decoder.end());
        const rows = parser.end();
        done = true;
        resolve(rows);
      } catch (e) { fail(e); }
    };
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      raw += chunk.length;
      if (raw > maxBytes) return fail(tooLarge(maxBytes));
      if (gunzip) gunzip.write(chunk); else text(chunk);
    });
    req.on('error', fail);
    req.on('aborted', () => fail(new TcplensError('TCPLENS_ERR_BAD_EVENT', 'the request body ended early', 'the client went away mid-batch; it should retry')));
    if (gunzip) {
      gunzip.on('data', text);
      gunzip.on('end', finish);
      gunzip.on('error', (e) => fail(new TcplensError('TCPLENS_ERR_BAD_EVENT', `gzip body: ${e.message}`, 'Content-Encoding: gzip needs a gzip stream')));
      req.on('end', () => gunzip.end());
    } else {
      req.on('end', finish);
    }
  });
}

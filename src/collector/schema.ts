// What each capability's `--json` record looks like, as data: the collector validates every
// ingested line against it, maps it to typed table columns, and turns stored rows back into the
// record as it was sent. One table per capability; a nested object (accept's toa, http's tunnel,
// hops' stats) is validated field by field and kept as JSON text, since nobody filters on it.
import { TcplensError } from '../errors.js';

export type Scalar = 'string' | 'int' | 'bigint' | 'number' | 'bool' | 'time';

export interface Field {
  name: string;
  type: Scalar | { object: Field[] };
  /** the value may be null */
  nullable?: boolean;
  /** the key may be absent (stored as NULL, left out again on the way back) */
  optional?: boolean;
  /** the only strings allowed */
  values?: readonly string[];
}

export interface CapabilitySchema {
  name: CapabilityName;
  fields: Field[];
  /** the field that says when it happened; records without one are placed at their arrival */
  timeField: string | null;
  /** query filters -> the column they match */
  filters: Partial<Record<QueryFilter, string>>;
}

export type CapabilityName = 'accept' | 'http' | 'hops' | 'probe';
export type QueryFilter = 'local' | 'client';

const spread: Field = { name: '', type: { object: [{ name: 'min', type: 'number' }, { name: 'median', type: 'number' }, { name: 'max', type: 'number' }] }, nullable: true };

// Field for field the AcceptRecord of src/capabilities/accept/accept.ts.
const accept: CapabilitySchema = {
  name: 'accept',
  timeField: 'time',
  filters: { local: 'local', client: 'client' },
  fields: [
    { name: 'time', type: 'time' },
    { name: 'last', type: 'time', optional: true },
    { name: 'local', type: 'string' },
    { name: 'peer', type: 'string' },
    { name: 'client', type: 'string', nullable: true },
    { name: 'toa', nullable: true, type: { object: [
      { name: 'kind', type: 'int' }, { name: 'len', type: 'int' },
      { name: 'source', type: 'string', values: ['ack', 'syn', 'toa.ko'] }, { name: 'claimed', type: 'string' }] } },
    { name: 'trusted', type: 'bool', nullable: true },
    { name: 'malformed', type: 'string', nullable: true, values: ['bad_option', 'conflict'] },
    { name: 'count', type: 'int' },
    { name: 'summary', type: 'bool' },
    { name: 'ttl', type: 'int', nullable: true },
    { name: 'hops', type: 'int', nullable: true },
    { name: 'kernel_ns', type: 'bigint' },
    { name: 'pid', type: 'int', nullable: true },
    { name: 'comm', type: 'string', nullable: true },
    { name: 'cgroup', type: 'string', nullable: true },
    { name: 'netns', type: 'bigint' },
  ],
};

// The HttpExchange of src/net/http1.ts.
const http: CapabilitySchema = {
  name: 'http',
  timeField: 'time',
  filters: { local: 'server', client: 'client' },
  fields: [
    { name: 'time', type: 'time' },
    { name: 'client', type: 'string' },
    { name: 'server', type: 'string' },
    { name: 'method', type: 'string' },
    { name: 'host', type: 'string', nullable: true },
    { name: 'path', type: 'string' },
    { name: 'status', type: 'int', nullable: true },
    { name: 'req_bytes', type: 'bigint' },
    { name: 'resp_bytes', type: 'bigint' },
    { name: 'latency_ms', type: 'number', nullable: true },
    { name: 'vlan', type: 'int', nullable: true },
    { name: 'tunnel', nullable: true, type: { object: [{ name: 'type', type: 'string' }, { name: 'src', type: 'string' }, { name: 'dst', type: 'string' }] } },
    { name: 'probe', type: 'string', nullable: true },
    { name: 'error', type: 'string', nullable: true, values: ['no_response', 'gap', 'reset', 'parse_error'] },
  ],
};

// The HopsResult of src/capabilities/hops/run.ts (it carries no time: arrival time stands in).
const hops: CapabilitySchema = {
  name: 'hops',
  timeField: null,
  filters: {},
  fields: [
    { name: 'target', type: 'string' },
    { name: 'address', type: 'string', nullable: true },
    { name: 'family', type: 'int', nullable: true },
    { name: 'status', type: 'string', values: ['open', 'refused', 'timeout', 'unreachable', 'error'] },
    { name: 'ttl', type: 'int', nullable: true },
    { name: 'initial_ttl', type: 'int', nullable: true },
    { name: 'hops', type: 'int', nullable: true },
    { name: 'connect_ms', type: 'number', nullable: true },
    { name: 'error', type: 'string', nullable: true },
    { name: 'probes', type: 'int', optional: true },
    { name: 'replies', type: 'int', optional: true },
    { name: 'stats', optional: true, type: { object: [{ ...spread, name: 'ttl' }, { ...spread, name: 'hops' }, { ...spread, name: 'connect_ms' }] } },
  ],
};

// The ProbeResult of src/capabilities/http/probe.ts: one tagged request as its sender saw it
// (server: the name the answer gave, as the lab's pods do). Where it went on the way is in the
// http agents' records of the same probe id (GET /v1/probes).
const probe: CapabilitySchema = {
  name: 'probe',
  timeField: 'time',
  filters: {},
  fields: [
    { name: 'run', type: 'string' },
    { name: 'probe', type: 'string' },
    { name: 'seq', type: 'int' },
    { name: 'time', type: 'time' },
    { name: 'status', type: 'int', nullable: true },
    { name: 'latency_ms', type: 'number', nullable: true },
    { name: 'server', type: 'string', nullable: true },
    { name: 'error', type: 'string', nullable: true },
  ],
};

export const CAPABILITIES: Record<CapabilityName, CapabilitySchema> = { accept, http, hops, probe };

export function capabilitySchema(name: string | null): CapabilitySchema {
  const s = name !== null && Object.hasOwn(CAPABILITIES, name) ? CAPABILITIES[name as CapabilityName] : undefined;
  if (!s) {
    throw new TcplensError('TCPLENS_ERR_UNKNOWN_CAPABILITY', `unknown capability '${name ?? ''}'`,
      `capability is one of: ${Object.keys(CAPABILITIES).join(', ')}`);
  }
  return s;
}

/** An agent's name on the wire (it becomes a metric label and a column value). */
export const AGENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Keys the collector adds to every record it returns, so no record may carry them itself. */
export const RESERVED_KEYS = ['agent', 'capability'];
export const MAX_STRING = 4096;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * 'YYYY-MM-DDTHH:MM:SS.mmmZ' -> microseconds since the epoch; null: not that form; NaN: that form
 * but no such time (Feb 30, 25:00). Exactly what Date.parse plus a toISOString round trip accept,
 * without building a Date and a string for every record (that pair was a good part of ingest).
 */
export function isoUtcMicros(v: string): number | null {
  if (v.length !== 24 || !ISO_UTC.test(v)) return null;
  const d = (at: number, n: number) => { let x = 0; for (let i = at; i < at + n; i++) x = x * 10 + v.charCodeAt(i) - 48; return x; };
  const y = d(0, 4), mo = d(5, 2), day = d(8, 2), h = d(11, 2), mi = d(14, 2), sec = d(17, 2), ms = d(20, 3);
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  if (mo < 1 || mo > 12 || day < 1 || day > (mo === 2 && leap ? 29 : DAYS_IN_MONTH[mo - 1]) || h > 23 || mi > 59 || sec > 59) return NaN;
  // Days from the civil date (Howard Hinnant's algorithm: proleptic Gregorian, any year).
  const yy = mo <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400), yoe = yy - era * 400;
  const doy = Math.floor((153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const days = era * 146097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719468;
  return (((days * 24 + h) * 60 + mi) * 60 + sec) * 1e6 + ms * 1000;
}

/** One stored row: the record's typed column values in schema order, then the unknown keys.
 * BIGINT and time values are plain numbers (times in microseconds): JSON numbers are at most
 * 2^53 anyway, and no BigInt is made per value on the way to the columns. */
export interface EventRow { values: (string | number | boolean | null)[]; extra: string | null; timeUs: number | null }

function bad(where: string, why: string): never {
  throw new TcplensError('TCPLENS_ERR_BAD_EVENT', `${where}: ${why}`,
    'each line must be one JSON object exactly as `tcplens <capability> --json` prints it');
}

// `where` and `sep` make the location (`line 3: time`, `line 3: toa.kind`) only when a value is
// refused: built for every field of every record, that string was a good part of ingest's cost.
function checkScalar(v: unknown, f: Field, where: string, sep: string): string | number | boolean {
  switch (f.type) {
    case 'string':
      if (typeof v !== 'string') bad(`${where}${sep}${f.name}`, `expected a string, got ${typeName(v)}`);
      if (v.length > MAX_STRING) bad(`${where}${sep}${f.name}`, `longer than ${MAX_STRING} characters`);
      if (f.values && !f.values.includes(v)) bad(`${where}${sep}${f.name}`, `'${v.slice(0, 40)}' is not one of ${f.values.join(', ')}`);
      return v;
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) bad(`${where}${sep}${f.name}`, `expected a 32-bit whole number, got ${typeName(v)}`);
      return v;
    case 'bigint':
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) bad(`${where}${sep}${f.name}`, `expected a whole number, got ${typeName(v)}`);
      return v;
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v)) bad(`${where}${sep}${f.name}`, `expected a number, got ${typeName(v)}`);
      return v;
    case 'bool':
      if (typeof v !== 'boolean') bad(`${where}${sep}${f.name}`, `expected true or false, got ${typeName(v)}`);
      return v;
    case 'time': {
      const us = typeof v === 'string' ? isoUtcMicros(v) : null;
      if (us === null) bad(`${where}${sep}${f.name}`, `expected a UTC time like 2026-12-01T21:00:00.000Z, got ${typeName(v)}`);
      if (Number.isNaN(us)) bad(`${where}${sep}${f.name}`, `'${v as string}' is not a valid time`);
      return us;
    }
    default:
      return bad(`${where}${sep}${f.name}`, 'unexpected field type');
  }
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.slice(0, 40))}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

const namesOf = new WeakMap<Field[], Set<string>>();
/** The field names of a list, as a set made once (looked up for every key of every record). */
function fieldNames(fields: Field[]): Set<string> {
  let names = namesOf.get(fields);
  if (!names) { names = new Set(fields.map((f) => f.name)); namesOf.set(fields, names); }
  return names;
}

function checkObject(v: unknown, fields: Field[], where: string): void {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(where, `expected an object, got ${typeName(v)}`);
  const o = v as Record<string, unknown>;
  for (const f of fields) {
    const fv = o[f.name];
    if (fv === undefined) { if (!f.optional) bad(`${where}.${f.name}`, 'missing'); continue; }
    if (fv === null) { if (!f.nullable) bad(`${where}.${f.name}`, 'must not be null'); continue; }
    if (typeof f.type === 'object') checkObject(fv, f.type.object, `${where}.${f.name}`);
    else checkScalar(fv, f, where, '.');
  }
  const names = fieldNames(fields);
  for (const k of Object.keys(o)) if (!names.has(k)) bad(`${where}.${k}`, 'unexpected key');
}

/**
 * A parsed line -> its row. Keys the schema does not know are kept (a newer agent may add
 * fields) and given back as they came; only the keys the collector itself adds are refused.
 */
export function recordToRow(schema: CapabilitySchema, rec: unknown, where: string): EventRow {
  if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) bad(where, `expected a JSON object, got ${typeName(rec)}`);
  const o = rec as Record<string, unknown>;
  const values: EventRow['values'] = [];
  let timeUs: number | null = null;
  for (const f of schema.fields) {
    const v = o[f.name];
    if (v === undefined) {
      if (!f.optional) bad(`${where}: ${f.name}`, 'missing');
      values.push(null);
    } else if (v === null) {
      if (!f.nullable) bad(`${where}: ${f.name}`, 'must not be null');
      values.push(null);
    } else if (typeof f.type === 'object') {
      checkObject(v, f.type.object, `${where}: ${f.name}`);
      values.push(JSON.stringify(v));
    } else {
      const sv = checkScalar(v, f, where, ': ');
      if (f.name === schema.timeField) timeUs = sv as number;
      values.push(sv);
    }
  }
  let extra: Record<string, unknown> | null = null;
  const names = fieldNames(schema.fields);
  for (const k of Object.keys(o)) {
    if (names.has(k)) continue;
    if (RESERVED_KEYS.includes(k)) bad(`${where}: ${k}`, 'reserved: the collector adds it to every record');
    (extra ??= {})[k] = o[k];
  }
  return { values, extra: extra ? JSON.stringify(extra) : null, timeUs };
}

/** A stored row (values as DuckDB returns them, time columns as epoch ms) -> the record as sent. */
export function rowToRecord(schema: CapabilitySchema, values: readonly unknown[], extra: string | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  schema.fields.forEach((f, i) => {
    const v = values[i];
    if (v === null || v === undefined) {
      if (!f.optional) out[f.name] = null;
      return;
    }
    if (typeof f.type === 'object') out[f.name] = JSON.parse(v as string);
    else if (f.type === 'time') out[f.name] = new Date(Number(v)).toISOString();
    else if (f.type === 'bigint') out[f.name] = Number(v);
    else out[f.name] = v;
  });
  return extra ? { ...out, ...JSON.parse(extra) as Record<string, unknown> } : out;
}

export const DUCK_TYPES: Record<Scalar, string> = {
  string: 'VARCHAR', int: 'INTEGER', bigint: 'BIGINT', number: 'DOUBLE', bool: 'BOOLEAN', time: 'TIMESTAMP',
};

export function columnType(f: Field): string {
  return typeof f.type === 'object' ? 'VARCHAR' : DUCK_TYPES[f.type];
}

/** Identifiers come only from the schema above, never from a request; quoting keeps names such as "time" columns. */
export function ident(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not an identifier: ${name}`);
  return `"${name}"`;
}

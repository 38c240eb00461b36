// The query builders write parameters as DuckDB does ($name); ClickHouse binds them server-side
// as {name:Type}. The type follows the value the builder bound, so user values still never enter
// the SQL text. Only $ followed by a letter is a parameter: the builders' fixed text has no such
// string literal (DuckDB's JSON paths, '$.x', are not in the ClickHouse dialect at all).
import type { SqlParams } from '../store-api.js';

function typeOf(name: string, v: SqlParams[string]): string {
  switch (typeof v) {
    case 'string': return 'String';
    case 'bigint': return 'Int64';
    case 'number': return Number.isInteger(v) ? 'Int64' : 'Float64';
    case 'boolean': return 'Bool';
    default:
      if (v === null) return 'Nullable(String)';
      throw new Error(`parameter $${name}: unsupported value`);
  }
}

export function bindParams(sql: string, params: SqlParams = {}): { query: string; query_params: Record<string, unknown> } {
  const query = sql.replace(/\$([a-z_][a-z0-9_]*)/gi, (_, name: string) => {
    if (!Object.hasOwn(params, name)) throw new Error(`parameter $${name} has no value`);
    return `{${name}:${typeOf(name, params[name])}}`;
  });
  return { query, query_params: params };
}

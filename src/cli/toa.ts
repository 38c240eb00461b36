// Placeholder until the toa command lands.
import { TcplensError } from '../kernel/errors.js';

export async function run(_argv: string[]): Promise<number> {
  throw new TcplensError('TCPLENS_ERR_UNKNOWN_COMMAND', 'toa is not built yet', 'see the open issues');
}

// Preloaded by bunfig.toml before any test file: the programs the tests start (nginx, chromium,
// redis-server) are installed when missing, so `bun test` and `bun test <file>` need nothing done
// by hand first, just as `bun run test`. When all are there, this only looks on PATH.

import { ensureSystemTools } from '../scripts/system-tools'

await ensureSystemTools(['test'])

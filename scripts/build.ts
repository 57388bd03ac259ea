// `bun run build [-- --outfile <path>]`: the whole of Tessera as one executable, dist/tessera by
// default (`bun build --compile`). It needs nothing but its environment: the migrations, the Lua
// scripts and Swagger UI's files are embedded (text and file imports), and so is the argon2 native
// addon for this platform.

import { join } from 'node:path'
import { parseArgs } from 'node:util'

const ROOT = join(import.meta.dir, '..')
const { values } = parseArgs({ options: { outfile: { type: 'string', default: join(ROOT, 'dist', 'tessera') } } })

const result = await Bun.build({
  entrypoints: [join(ROOT, 'src', 'cli', 'tessera.ts')],
  compile: {
    outfile: values.outfile,
    // Configuration is the environment alone: a .env or bunfig.toml in whatever directory the
    // binary starts in must not change what it does.
    autoloadDotenv: false,
    autoloadBunfig: false,
    // From source, Bun reports deprecated Node APIs only for the application's own code, not for
    // node_modules (ioredis parses REDIS_URL with url.parse); in a binary every module looks like the
    // application's, and each start would print a warning that is not a JSON log line.
    execArgv: ['--no-deprecation'],
  },
  // Bytecode compiled ahead of time: a faster boot (bun run bench's boot scenario measures it).
  bytecode: true,
  format: 'esm',
  // Not identifiers: Elysia reads handlers' source to learn what they use.
  minify: { whitespace: true, syntax: true, identifiers: false },
  sourcemap: 'linked',
})
if (!result.success) {
  for (const log of result.logs) console.error(log)
  process.exit(1)
}
console.error(`build: ${values.outfile}`)

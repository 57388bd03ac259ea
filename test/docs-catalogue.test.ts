// The docs list what the code defines: every configuration variable in docs/operations.md, every
// error code in docs/api.md. A variable or code added without its line fails here.

import { describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { configVariables } from '../src/config'
import { ERRORS } from '../src/lib/errors'

const read = (path: string) => Bun.file(join(import.meta.dir, '..', path)).text()

describe('the docs match the code', () => {
  test('every variable of the config schema has a row in docs/operations.md', async () => {
    const operations = await read('docs/operations.md')
    const missing = configVariables().filter((variable) => !operations.includes(`| \`${variable.env}\` |`))
    expect(missing.map((variable) => variable.env)).toEqual([])
  })

  test('every error code of the catalogue is listed in docs/api.md under its status', async () => {
    const api = await read('docs/api.md')
    const errors = api.slice(api.indexOf('## Errors'))
    for (const [code, { status }] of Object.entries(ERRORS)) {
      const line = errors.split('\n- ').find((item) => item.startsWith(`**${status}**`)) ?? ''
      expect({ code, listed: line.includes(`\`${code}\``) }).toEqual({ code, listed: true })
    }
  })
})

// Every relative link in the README, docs/ and bench/README.md must lead to a file and a heading that exist.

import { describe, expect, test } from 'bun:test'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'

const ROOT = join(import.meta.dir, '..')
const README_LIMIT_BYTES = 25_600

/** GitHub's heading anchor: lower case, punctuation dropped (hyphens and underscores kept), each space a hyphen. */
function slug(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replaceAll(' ', '-')
}

/** Markdown without fenced code blocks: a `# comment` in a shell block is not a heading, nor `[a](b)` there a link. */
function prose(markdown: string): string[] {
  let fenced = false
  return markdown.split('\n').filter((line) => {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced
    else if (!fenced) return true
    return false
  })
}

/** The anchors GitHub gives a file's headings; a repeated heading gets -1, -2, ... */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>()
  const result = new Set<string>()
  for (const line of prose(markdown)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1]
    if (heading === undefined) continue
    // Links in a heading count by their text only.
    const base = slug(heading.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1'))
    const count = seen.get(base) ?? 0
    seen.set(base, count + 1)
    result.add(count === 0 ? base : `${base}-${count}`)
  }
  return result
}

/** The relative links of `file` (a path from the repository root) that lead nowhere. */
function brokenLinks(file: string, markdown: string): string[] {
  const broken: string[] = []
  // Inline code is dropped first: `[a](b)` written as an example is not a link.
  const text = prose(markdown)
    .join('\n')
    .replace(/`[^`\n]*`/g, '')
  for (const [, , target = ''] of text.matchAll(/!?\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    if (/^(https?:|mailto:)/i.test(target)) continue
    const [path = '', anchor] = target.split('#', 2)
    const resolved = path === '' ? file : join(dirname(file), decodeURIComponent(path))
    if (!existsSync(join(ROOT, resolved))) {
      broken.push(`${target} (no such file)`)
    } else if (anchor !== undefined && resolved.endsWith('.md')) {
      if (!anchors(readFileSync(join(ROOT, resolved), 'utf8')).has(anchor)) broken.push(`${target} (no such heading)`)
    }
  }
  return broken
}

const documents = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
  // Written separately; checked as soon as it exists.
  ...(existsSync(join(ROOT, 'bench/README.md')) ? ['bench/README.md'] : []),
]

describe('the link checker itself', () => {
  test('slugs headings as GitHub does', () => {
    expect(slug('Forward auth for gateways: `/auth/verify`')).toBe('forward-auth-for-gateways-authverify')
    expect(slug('7.5.1-7.5.3 and CS_Errors')).toBe('751-753-and-cs_errors')
    expect([...anchors('# A\n## A\n```sh\n# A\n```\n### A')]).toEqual(['a', 'a-1', 'a-2'])
  })

  test('reports a missing file and a missing heading, and nothing else', () => {
    const links = '[gone](docs/nope.md) [lost](#nowhere) [fine](README.md#tessera) [web](https://example.com/x)'
    expect(brokenLinks('README.md', links)).toEqual(['docs/nope.md (no such file)', '#nowhere (no such heading)'])
  })
})

describe('documentation', () => {
  test.each(documents)('%s: every relative link and anchor resolves', (file) => {
    expect(brokenLinks(file, readFileSync(join(ROOT, file), 'utf8'))).toEqual([])
  })

  test('README.md stays a short front door (under 25 KB)', () => {
    expect(statSync(join(ROOT, 'README.md')).size).toBeLessThan(README_LIMIT_BYTES)
  })

  test('docs/ is found, so the checks above are not vacuous', () => {
    expect(documents).toContain('docs/SECURITY.md')
  })
})

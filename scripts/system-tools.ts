// Makes sure the programs the tests and the benchmark start as processes are installed, from
// Debian's packages: `bun scripts/system-tools.ts test` runs before `bun test`, `... bench` before
// the benchmark. When everything is present it only looks on PATH: no apt call at all.
// It imports nothing from node_modules, so it runs before `bun install` too (.ci/run).

import { existsSync } from 'node:fs'

type Suite = 'test' | 'bench'

interface SystemTool {
  /** The program a suite starts. */
  command: string
  /** The Debian package that provides it. */
  package: string
  suites: readonly Suite[]
  /** Who starts it, for the messages. */
  usedBy: string
}

/** Every program a suite needs from the system, beside Bun, Redis and PostgreSQL themselves. */
export const SYSTEM_TOOLS: readonly SystemTool[] = [
  { command: 'nginx', package: 'nginx', suites: ['test'], usedBy: 'test/nginx-forward-auth.test.ts' },
  // Redis may run in Docker (docker-compose.yml), but some tests start their own redis-server.
  { command: 'redis-server', package: 'redis-server', suites: ['test'], usedBy: 'test/processes.ts' },
  // Driven by playwright-core, which never downloads a browser of its own.
  { command: 'chromium', package: 'chromium', suites: ['test'], usedBy: 'test/browser.test.ts' },
  { command: 'wrk', package: 'wrk', suites: ['bench'], usedBy: 'bun run bench' },
]

const SUITES: readonly Suite[] = ['test', 'bench']
// Debian puts daemons such as nginx in sbin, which is not on every user's PATH.
const SBIN = '/usr/local/sbin:/usr/sbin:/sbin'
const POLICY_RC = '/usr/sbin/policy-rc.d'

/** The full path of an installed tool, or null. */
export function findTool(command: string): string | null {
  return Bun.which(command) ?? Bun.which(command, { PATH: SBIN })
}

const say = (line: string) => console.error(`system-tools: ${line}`)

function fail(line: string): never {
  say(line)
  process.exit(1)
}

/** How to run a command as root here: directly, through passwordless sudo, or not at all. */
function rootPrefix(): string[] | null {
  if (process.getuid?.() === 0) return []
  if (Bun.which('sudo') && Bun.spawnSync(['sudo', '-n', 'true'], { stderr: 'ignore' }).exitCode === 0) {
    // sudo resets the environment; `env` passes the one variable apt needs through it.
    return ['sudo', '-n', 'env', 'DEBIAN_FRONTEND=noninteractive']
  }
  return null
}

async function run(argv: string[], timeoutMs: number): Promise<boolean> {
  const proc = Bun.spawn(argv, {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    stdin: 'ignore',
    stdout: 'inherit',
    stderr: 'inherit',
    timeout: timeoutMs,
  })
  return (await proc.exited) === 0
}

async function aptInstall(asRoot: string[], packages: string[]): Promise<boolean> {
  // Wait for another apt (a neighbour's test run) rather than fail on its lock.
  const wait = ['-o', 'DPkg::Lock::Timeout=300']
  let updated = false
  for (let attempt = 1; attempt <= 2; attempt++) {
    if (!updated) updated = await run([...asRoot, 'apt-get', 'update', '-q', ...wait], 600_000)
    const install = ['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...wait, ...packages]
    if (await run([...asRoot, ...install], 900_000)) return true
    say(`apt-get install ${packages.join(' ')} failed (attempt ${attempt} of 2)`)
    updated = false
  }
  return false
}

/**
 * Tests start their own nginx (and redis-server) on loopback ports: a policy-rc.d that answers 101
 * keeps the packages from starting the system services. Ours only if we created it (`set -C`
 * refuses to overwrite one that is there), so an existing policy is neither replaced nor removed.
 */
async function guardServices(asRoot: string[]): Promise<() => void> {
  if (existsSync(POLICY_RC)) return () => {}
  const script = `set -C; printf '#!/bin/sh\\nexit 101\\n' > ${POLICY_RC} && chmod 755 ${POLICY_RC}`
  if (!(await run([...asRoot, 'sh', '-c', script], 10_000))) return () => {}
  let removed = false
  const remove = () => {
    if (removed) return
    removed = true
    Bun.spawnSync([...asRoot, 'rm', '-f', POLICY_RC])
  }
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(signal, () => {
      remove()
      process.exit(code)
    })
  }
  return remove
}

async function main(args: string[]): Promise<void> {
  const unknown = args.filter((arg) => !SUITES.includes(arg as Suite))
  if (args.length === 0 || unknown.length > 0) fail(`usage: bun scripts/system-tools.ts ${SUITES.join('|')}...`)
  await ensureSystemTools(args as Suite[])
}

/**
 * Installs what the suites need and is missing (apt-get, as root or through passwordless sudo), or
 * ends the process with one line saying what to install by hand.
 */
export async function ensureSystemTools(args: readonly Suite[]): Promise<void> {
  const missing = SYSTEM_TOOLS.filter(
    (tool) => tool.suites.some((suite) => args.includes(suite)) && findTool(tool.command) === null,
  )
  if (missing.length === 0) return

  const packages = [...new Set(missing.map((tool) => tool.package))]
  const what = missing.map((tool) => `${tool.command} (for ${tool.usedBy})`).join(', ')
  const byHand = `apt-get install -y --no-install-recommends ${packages.join(' ')}`
  if (!Bun.which('apt-get')) fail(`missing ${what}; no apt-get here: install ${packages.join(' ')} yourself`)
  const asRoot = rootPrefix()
  if (!asRoot) fail(`missing ${what}; not root and no passwordless sudo: run \`sudo ${byHand}\``)

  say(`missing ${what}; installing ${packages.join(' ')} with apt-get`)
  const unguard = await guardServices(asRoot)
  try {
    await aptInstall(asRoot, packages)
  } finally {
    unguard()
  }
  // Judged by what is on disk afterwards, not by apt's exit code alone.
  const still = missing.filter((tool) => findTool(tool.command) === null)
  if (still.length > 0) {
    fail(`still missing ${still.map((tool) => tool.command).join(', ')}: apt-get could not install them (above)`)
  }
  say(`installed ${packages.join(' ')}: ${missing.map((tool) => findTool(tool.command)).join(', ')}`)
}

if (import.meta.main) await main(process.argv.slice(2))

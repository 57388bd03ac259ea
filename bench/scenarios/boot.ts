// boot: from spawning a server to its first 200 on /readyz, for `bun src/index.ts` and for the
// binary `bun run build` makes, started in turn against the bench's database (production settings:
// no migration at boot, only the check) until each has `runs` boots.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runOrThrow } from '../../test/services'
import { median, ROOT } from '../lib/measure'
import type { BenchEnv } from '../lib/servers'

export interface Boot {
  runs: number
  bunMs: number[]
  binaryMs: number[]
  /** Size of the binary in bytes. */
  binaryBytes: number
}

export async function measureBoot(env: BenchEnv, runs: number): Promise<Boot> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-boot-'))
  try {
    const binary = join(dir, 'tessera')
    runOrThrow(['bun', 'scripts/build.ts', '--outfile', binary], ROOT)
    const bunMs: number[] = []
    const binaryMs: number[] = []
    for (let run = 0; run < runs; run++) {
      // Alternating, so that a busy moment of the machine falls on both.
      bunMs.push(await env.timeBoot(`boot_bun_${run}`))
      binaryMs.push(await env.timeBoot(`boot_binary_${run}`, [binary, 'serve']))
    }
    return { runs, bunMs, binaryMs, binaryBytes: Bun.file(binary).size }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Binary ÷ bun: the median of each pair's ratio, as the HTTP scenarios' ratios are. */
export const bootRatio = (boot: Boot) => median(boot.binaryMs.map((ms, i) => ms / (boot.bunMs[i] ?? Number.NaN)))

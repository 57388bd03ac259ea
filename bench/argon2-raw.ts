// Raw argon2id verification throughput at Tessera's parameters, in a process of its own: the
// ceiling for POST /user/login. Usage: bun bench/argon2-raw.ts <concurrency> <seconds>
// Prints one JSON line: verifications, seconds, perSecond, cpuMsPerVerification (the whole process)
// and poolCpuMsPerVerification (Bun's worker pool alone, where the verifications run).

import { hash, verify } from '@node-rs/argon2'
import { ARGON2_PARAMS } from '../src/modules/users/password'
import { poolThreadsCpuTimeMs } from './lib/processes'

const concurrency = Number(process.argv[2] ?? 4)
const seconds = Number(process.argv[3] ?? 3)
const password = 'bench-password-0123456789'

const passwordHash = await hash(password, ARGON2_PARAMS)
// One untimed verification so the thread pool and the first 19 MiB allocation are warm.
await verify(passwordHash, password)

let verifications = 0
const cpuBefore = process.cpuUsage()
const poolBefore = poolThreadsCpuTimeMs(process.pid)
const started = performance.now()
const deadline = started + seconds * 1000
async function worker(): Promise<void> {
  while (performance.now() < deadline) {
    if (!(await verify(passwordHash, password))) throw new Error('argon2 verification failed')
    verifications++
  }
}
await Promise.all(Array.from({ length: concurrency }, worker))
const elapsed = (performance.now() - started) / 1000
const cpu = process.cpuUsage(cpuBefore)
const poolMs = poolThreadsCpuTimeMs(process.pid) - poolBefore

console.log(
  JSON.stringify({
    verifications,
    seconds: elapsed,
    perSecond: verifications / elapsed,
    cpuMsPerVerification: (cpu.user + cpu.system) / 1000 / verifications,
    poolCpuMsPerVerification: poolMs / verifications,
    params: ARGON2_PARAMS,
  }),
)

// Raw argon2id verification throughput at Tessera's parameters, in a process of its own: the
// ceiling for POST /user/login. Usage: bun bench/argon2-raw.ts <concurrency> <seconds>; prints one
// JSON line: verifications per second (rps), CPU per verification in µs (cpuUs), and how many.

import { hash, verify } from '@node-rs/argon2'
import { ARGON2_PARAMS } from '../src/modules/users/password'

const concurrency = Number(process.argv[2] ?? 4)
const seconds = Number(process.argv[3] ?? 3)
const password = 'bench-password-0123456789'

const passwordHash = await hash(password, ARGON2_PARAMS)
// One untimed verification, so that the thread pool and the first 19 MiB allocation are warm.
await verify(passwordHash, password)

let requests = 0
const cpuBefore = process.cpuUsage()
const started = performance.now()
const deadline = started + seconds * 1000
async function worker(): Promise<void> {
  while (performance.now() < deadline) {
    if (!(await verify(passwordHash, password))) throw new Error('argon2 verification failed')
    requests++
  }
}
await Promise.all(Array.from({ length: concurrency }, worker))
const cpu = process.cpuUsage(cpuBefore)
const rps = requests / ((performance.now() - started) / 1000)
console.log(JSON.stringify({ rps, cpuUs: (cpu.user + cpu.system) / requests, requests }))

// A pause that every runtime has: the background loops run on Bun and on Deno (src/deno.ts).

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

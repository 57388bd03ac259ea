// Text imports (`import source from './x.lua' with { type: 'text' }`): Bun and Deno both read the
// file as a string, and `bun build --compile` embeds it. SQL migrations are embedded the same way.
declare module '*.lua' {
  const source: string
  export default source
}

declare module '*.sql' {
  const source: string
  export default source
}

// File imports (`with { type: 'file' }`): a path, to the file itself from source and to the copy
// `bun build --compile` embeds in the binary. Swagger UI's assets are imported this way.
declare module 'swagger-ui-dist/*' {
  const path: string
  export default path
}

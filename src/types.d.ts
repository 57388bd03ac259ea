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

// Swagger UI's script and stylesheet, imported as text the same way.
declare module 'swagger-ui-dist/*' {
  const source: string
  export default source
}

import { defineConfig } from 'drizzle-kit'

// Only `generate` is used in this project: migrations are committed under drizzle/ and applied
// by the server at boot (src/db/migrate.ts), never pushed.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './drizzle',
})

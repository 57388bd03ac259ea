// Shared OpenAPI response entries, so every route documents the errors it can give.

import { ErrorBody } from './errors'

const DESCRIPTIONS: Record<number, string> = {
  400: 'Malformed JSON body, or JSON nested too deep.',
  401: 'No valid session: log in first.',
  403: 'Logged in but lacking the permission, or a cross-origin request.',
  404: 'Not found.',
  409: 'Conflict with the current state.',
  413: 'Body over 64 KiB.',
  415: 'Body is not application/json.',
  422: 'A field failed validation; `error.field` names it.',
  429: 'Too many failed attempts; see Retry-After.',
  503: 'Redis or PostgreSQL unreachable; retry after Retry-After seconds.',
}

type Code = keyof typeof DESCRIPTIONS

/** `response` entries for the given error statuses (503 is always included). */
export function errors<const C extends readonly Code[]>(...codes: C) {
  const all = [...new Set([...codes, 503])] as number[]
  return Object.fromEntries(all.map((code) => [code, ErrorBody])) as { [K in C[number] | 503]: typeof ErrorBody }
}

export function describeErrors(...codes: Code[]) {
  return Object.fromEntries(
    [...new Set([...codes, 503])].map((code) => [
      code,
      {
        description: DESCRIPTIONS[code],
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      },
    ]),
  )
}

// The route a request took, as declared (`/admin/users/:id`), for the duration histogram's label.
// Matched in the fetch wrap against the app's own route table rather than told by an Elysia hook:
// a hook on every route made each authenticated request measurably slower (bench: me_cached), while
// a map lookup on the path costs next to nothing. Ids never reach the label, so series stay few.

/** What the label is matched against: the app's routes (Elysia's `app.routes`). */
export interface DeclaredRoute {
  readonly method: string
  readonly path: string
}

export type RouteLabel = (method: string, path: string) => string

const escapeRegExp = (text: string) => text.replace(/[.+?^${}()|[\]\\]/g, '\\$&')

/** `/admin/users/:id` as a pattern over a path; `*` matches the rest of it. */
function patternOf(path: string): RegExp {
  const segments = path.split('/').map((segment) => {
    if (segment.startsWith(':')) return '[^/]+'
    if (segment === '*') return '.*'
    return escapeRegExp(segment)
  })
  return new RegExp(`^${segments.join('/')}$`)
}

/**
 * A labeller for these routes: the declared path of the route a method and path take (HEAD as GET,
 * a trailing slash ignored, as the router does), or `unmatched`.
 */
export function routeLabeller(routes: readonly DeclaredRoute[]): RouteLabel {
  // By method, then path: no key string is built per request.
  const exact = new Map<string, Map<string, string>>()
  const patterns: { method: string; pattern: RegExp; path: string }[] = []
  for (const { method, path } of routes) {
    if (path.includes(':') || path.includes('*')) patterns.push({ method, pattern: patternOf(path), path })
    else {
      const paths = exact.get(method) ?? new Map<string, string>()
      paths.set(path, path)
      exact.set(method, paths)
    }
  }
  return (requestMethod, requestPath) => {
    const method = requestMethod === 'HEAD' ? 'GET' : requestMethod
    const path = requestPath.length > 1 && requestPath.endsWith('/') ? requestPath.slice(0, -1) : requestPath
    const found = exact.get(method)?.get(path) ?? exact.get('ALL')?.get(path)
    if (found !== undefined) return found
    for (const route of patterns) {
      if ((route.method === method || route.method === 'ALL') && route.pattern.test(path)) return route.path
    }
    return 'unmatched'
  }
}

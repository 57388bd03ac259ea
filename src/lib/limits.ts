// Limits shared by configuration, request schemas and services, defined once.

export const USERNAME_MIN_LENGTH = 3
export const USERNAME_MAX_LENGTH = 32
/** ASCII only: one spelling per name, so case folding is the same in JavaScript and PostgreSQL. */
export const USERNAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]*$'
export const USERNAME_RULE = `${USERNAME_MIN_LENGTH}-${USERNAME_MAX_LENGTH} letters, digits, dots, dashes or underscores, starting with a letter or digit`

const USERNAME = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._-]{${USERNAME_MIN_LENGTH - 1},${USERNAME_MAX_LENGTH - 1}}$`)

/**
 * The one normalisation of usernames, used for registration, lookups and rate-limit keys alike:
 * the lower-case form of a name registration accepts, or undefined for any other text. A name
 * registration would refuse therefore never reaches PostgreSQL (where lower() folds more than
 * ASCII, e.g. a dotted capital I) and is simply an unknown user.
 */
export function normalizeUsername(input: string): string | undefined {
  return USERNAME.test(input) ? input.toLowerCase() : undefined
}

export const PASSWORD_MIN_LENGTH = 8
/** Bounded so a login cannot make the server hash megabytes; 256 is far past any passphrase. */
export const PASSWORD_MAX_LENGTH = 256

/** Row ids (users, and the user ids in audit events) are PostgreSQL `integer`: 1 to this. */
export const ROW_ID_MAX = 2_147_483_647

/** Request bodies: far above any body Tessera accepts, far below what would cost it memory. */
export const BODY_LIMIT_BYTES = 64 * 1024

/**
 * JSON bodies nest at most this deep. Every body Tessera accepts is a flat object; a deeper one is
 * refused before parsing, so no recursive walk (validation, its error messages, logging) ever meets
 * thousands of levels.
 */
export const JSON_MAX_DEPTH = 32

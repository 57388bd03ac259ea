// Plain-text tables for the command line: one header line, one line per row, columns padded.

/** Renders rows as left-aligned columns two spaces apart; `(none)` under the header when empty. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)),
  )
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join('  ')
      .trimEnd()
  return [line(headers), ...(rows.length === 0 ? ['(none)'] : rows.map(line))].join('\n')
}

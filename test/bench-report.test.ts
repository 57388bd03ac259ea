// The benchmark report's formatting: a measured value gets enough decimals that it never seems to
// contradict its verdict, the run's duration reads as minutes, tables are Markdown, and the
// comparison with a baseline flags what moved by more than 5 %. No Redis, no PostgreSQL.

import { describe, expect, test } from 'bun:test'
import { BASE, baselineRows, duration, shownValue, type Target, table, targets } from '../bench/lib/report'
import type { Sample } from '../bench/scenarios/http'

const ratio = (value: number, target = 0.8): Target => ({ name: 'r', value, op: '>=', target, unit: 'x', how: '' })
const bytes = (value: number): Target => ({ name: 'b', value, op: '<=', target: 300, unit: 'B', how: '' })

describe('shownValue', () => {
  test('two decimals when they already tell the verdict', () => {
    expect(shownValue(ratio(0.794))).toBe('0.79x')
    expect(shownValue(ratio(0.823))).toBe('0.82x')
    expect(shownValue(ratio(0.8))).toBe('0.80x')
    expect(shownValue(ratio(10.6, 10))).toBe('10.60x')
  })

  test('more decimals where rounding would cross the target', () => {
    expect(shownValue(ratio(0.797))).toBe('0.797x')
    expect(shownValue(ratio(2.996, 3))).toBe('2.996x')
    expect(shownValue(ratio(0.79996))).toBe('0.79996x')
  })

  test('bytes are whole until the limit is at stake', () => {
    expect(shownValue(bytes(263.4))).toBe('263 B')
    expect(shownValue(bytes(300.2))).toBe('300.2 B')
    expect(shownValue(bytes(300))).toBe('300 B')
  })

  test('a missing figure stays n/a', () => {
    expect(shownValue(ratio(Number.NaN))).toBe('n/a')
  })
})

describe('duration', () => {
  test('seconds under a minute, minutes and seconds above', () => {
    expect(duration(48.4)).toBe('48 s')
    expect(duration(59.6)).toBe('1 min 0 s')
    expect(duration(482.2)).toBe('8 min 2 s')
  })
})

describe('table', () => {
  test('a padded Markdown table: the first column left-aligned, figures right-aligned', () => {
    expect(
      table(
        ['scenario', 'req/s'],
        [
          ['ping', '31,032'],
          ['me_cached', '9'],
        ],
      ),
    ).toBe(
      ['| scenario  |  req/s |', '| --------- | -----: |', '| ping      | 31,032 |', '| me_cached |      9 |'].join(
        '\n',
      ),
    )
  })
})

const rounds = (...pairs: [number, number][]): Sample[] =>
  pairs.map(([rps, cpuUs]) => ({ rps, cpuUs, mainUs: 0, p50Ms: 0, p99Ms: 0, requests: 0, failures: 0 }))

describe('targets', () => {
  test("with a baseline, each ratio is also taken between the baseline's servers, beside the same peer", () => {
    const samples = new Map([
      ['ping', rounds([100, 1], [100, 1])],
      ['me_redis', rounds([60, 1], [50, 1])],
      [`ping${BASE}`, rounds([100, 1], [120, 1])],
      [`me_redis${BASE}`, rounds([40, 1], [60, 1])],
      ['peer_express', rounds([5, 1], [5, 1])],
    ])
    const byName = new Map(targets({ http: { samples, errors: new Map() } }).map((t) => [t.name, t]))
    expect(byName.get('me_redis ÷ ping')?.value).toBeCloseTo(0.55)
    expect(byName.get('me_redis ÷ ping')?.baseline).toBeCloseTo(0.45)
    expect(byName.get('me_redis ÷ peer_express')?.baseline).toBeCloseTo(10)
    expect(byName.get('me_cached ÷ ping')?.baseline).toBeNaN()
  })
})

describe('baselineRows', () => {
  const compare = (current: Sample[], base: Sample[]) =>
    baselineRows(
      {
        samples: new Map([
          ['ping', current],
          [`ping${BASE}`, base],
        ]),
        errors: new Map(),
      },
      ['ping'],
    )[0]

  test('ratios are medians of the per-round ratios, for req/s and CPU per request', () => {
    const row = compare(rounds([100, 10], [200, 10], [90, 10]), rounds([100, 10], [100, 10], [100, 10]))
    expect(row?.rps).toBeCloseTo(1)
    expect(row?.cpu).toBeCloseTo(1)
    expect(row?.flagged).toBe(false)
  })

  test('a scenario more than 5 % off in either figure is flagged', () => {
    expect(compare(rounds([94, 10]), rounds([100, 10]))?.flagged).toBe(true)
    expect(compare(rounds([100, 10.6]), rounds([100, 10]))?.flagged).toBe(true)
    expect(compare(rounds([104, 10.4]), rounds([100, 10]))?.flagged).toBe(false)
  })

  test('a scenario the baseline could not run is flagged, not passed', () => {
    expect(compare(rounds([100, 10]), [])?.flagged).toBe(true)
  })
})

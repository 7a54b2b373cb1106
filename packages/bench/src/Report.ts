/**
 * One benchmark result row: our number next to the raw driver's, measured in
 * the same run, and the bar DESIGN §9 holds it to.
 */
export interface Row {
  readonly suite: string
  readonly metric: string
  readonly unit: string
  readonly conveyor: number
  readonly raw?: number
  /** The ratio printed is always conveyor ÷ raw; this says which way is good. */
  readonly higherIsBetter: boolean
  readonly bar?: string
}

/** What main.ts asks of a measuring process (Child.ts), and what it answers. */
import type { RunKey } from "./Provider.ts"
import type { ProviderName } from "./Providers.ts"
import type { Result } from "./Results.ts"
import { type Counts, fullCounts, quickCounts } from "./Workloads.ts"

export interface Spec {
  readonly provider: ProviderName
  readonly subject: string
  readonly run: RunKey
  readonly round: number
  readonly quick: boolean
}

export type Answer =
  | { readonly ok: true; readonly result: Result; readonly load1: number }
  | { readonly ok: false; readonly error: string }

export const countsFor = (quick: boolean, own?: (counts: Counts) => Counts): Counts =>
  (own ?? ((c) => c))(quick ? quickCounts : fullCounts)


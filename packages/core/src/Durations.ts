/** Duration inputs as the whole milliseconds providers put on the wire. */
import { Duration } from "effect"

/** Non-negative milliseconds of `input`; 0 when absent. */
export const millis = (input: Duration.Input | undefined): number =>
  input === undefined ? 0 : Math.max(0, Duration.toMillis(Duration.fromInputUnsafe(input)))

/**
 * How a consumer learns about messages. The effective mode is decided from a
 * provider's capabilities, never from its name.
 */
import type { Capabilities } from "./Messaging.ts"

/**
 * - `EventDrivenOnly`: push only (plus a sweep at start and after reconnects).
 * - `Hybrid`: push, backed by a fallback poll for providers whose push can miss.
 * - `PollingOnly`: poll every queue on a schedule; works on every provider.
 */
export type DeploymentMode = "EventDrivenOnly" | "Hybrid" | "PollingOnly"

export const effective = (mode: DeploymentMode, capabilities: Capabilities): DeploymentMode => {
  if (mode === "PollingOnly" || capabilities.push === "none") return "PollingOnly"
  if (mode === "Hybrid" && !capabilities.requiresFallbackPolling) return "EventDrivenOnly"
  return mode
}

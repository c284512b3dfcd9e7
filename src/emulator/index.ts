/**
 * A local Twitch for the demo, `eventsubd emulate` and the integration tests: id.twitch.tv's OAuth
 * endpoints, Helix `eventsub/subscriptions` with its limits, and webhook callback verification, faithful
 * to twitch-contract.md sections 1-5, 7 and 10.1. Faults can be scripted; counters are kept.
 */
export { startEmulator } from './server.js';
export { deliverWebhook, DELIVERY_TIMEOUT_MS } from './deliver.js';
export type { DeliverOptions, DeliverResult, WebhookMessageType } from './deliver.js';
export { catalogueEntries, lookupType } from './catalogue.js';
export type { CatalogueEntry } from './catalogue.js';
export type {
  Emulator,
  EmulatorClient,
  EmulatorOptions,
  EmulatorStats,
  Fault,
  FaultMatch,
  RequestRecord,
  WireSubscription,
} from './types.js';

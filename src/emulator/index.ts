/**
 * A local Twitch for the demo, `eventsubd emulate` and the integration tests: id.twitch.tv's OAuth
 * endpoints, Helix `eventsub/subscriptions` with its limits, and webhook callback verification, faithful
 * to Twitch's documentation (https://dev.twitch.tv/docs/authentication/, https://dev.twitch.tv/docs/api/guide/#twitch-rate-limits,
 * https://dev.twitch.tv/docs/api/reference/#create-eventsub-subscription and its neighbours,
 * https://dev.twitch.tv/docs/eventsub/handling-webhook-events/) and to twitch-cli's mock paths. Faults can be
 * scripted; counters are kept.
 */
export { startEmulator } from './server.js';
export { deliverWebhook, DELIVERY_TIMEOUT_MS } from './deliver.js';
export type { DeliverOptions, DeliverResult, WebhookMessageType } from './deliver.js';
export { catalogueEntries, lookupType } from '../twitch/catalogue.js';
export type { CatalogueEntry } from '../twitch/catalogue.js';
export type { SentMessage } from './conduits.js';
export type { SendEventsOptions } from './send-events.js';
export type { WsReconnectInfo, WsSessionInfo } from './ws-control.js';
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

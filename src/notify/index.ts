// What the rest of regmeta uses of the webhooks from the event log (regmeta serve --notify).
// It uses the store only; the server starts a Notifier beside itself.

export {
  DEFAULT_NOTIFY_LIMITS,
  DeliveryError,
  Notifier,
  type NotifierOptions,
  SIGNATURE_HEADER,
  signatureOf,
} from './notifier.js';
export { endpointLabels, endpointsProblem, withoutUrls, type NotifyEndpoint } from './endpoint.js';
export { ENVELOPE_MEDIA_TYPE, type EnvelopeEvent } from './envelope.js';

/** Event Hubs producer: publish alert records as Log Analytics export envelopes. */
export * from './client';
export * from './publish';

/** Request authentication: Entra ID bearer tokens (incident webhook) and HMAC signatures (generic alert sources). */
export * from './entra';
export * from './hmac';

/**
 * Construction of the real Event Hubs producer (@azure/event-hubs) for the CLI.
 *
 * Authentication: Entra ID through `DefaultAzureCredential` by default (managed identity in
 * Azure, `az login` / environment credentials on a workstation); the identity needs the
 * "Azure Event Hubs Data Sender" role on the hub or namespace. Alternative for places where
 * no Entra identity is available: a SAS connection string in `EVENTHUB_CONNECTION_STRING`
 * (see {@link createEventHubProducerFromEnv}); prefer identities, a connection string is a secret.
 *
 * Constructing a client opens no connection; the first `createBatch`/`sendBatch` does.
 */
import { EventHubProducerClient } from '@azure/event-hubs';
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { ConfigError } from '../errors';
import type { ProducerLike } from './publish';

/** A parsed `--eventhub` target. */
export interface EventHubTarget {
  /** e.g. `contoso-soc.servicebus.windows.net`. */
  fullyQualifiedNamespace: string;
  /** The event hub (entity) name. */
  eventHubName: string;
}

/** Namespace name rules (6–50 chars, letter first, letter or digit last). */
const NAMESPACE = /^[A-Za-z][A-Za-z0-9-]{4,48}[A-Za-z0-9]$/;
/** A DNS host name (for sovereign clouds or custom endpoints the FQDN is given in full). */
const HOST = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
/** Event hub names: letters, digits, `.`, `-`, `_`, starting and ending with a letter or digit, up to 256 chars. */
const HUB = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,254}[A-Za-z0-9])?$/;

/** Every character a NAMESPACE/HUB target (or an FQDN, an `sb://` prefix) can contain. */
const TARGET_CHARS = /^[A-Za-z0-9._:/-]*$/;

/**
 * A refused target (or part of one) as a message may show it: quoted when it is made of target
 * characters only. Anything else (`=`, `;`, `?`, `&`) is what a connection string or SAS has, and
 * those carry the key: such a value reaches the CLI's stderr, so it is described, never quoted.
 */
function shown(value: string): string {
  return TARGET_CHARS.test(value)
    ? JSON.stringify(value)
    : '(not shown: it has characters a target never has, such as = ; ? &: a connection string or SAS goes in EVENTHUB_CONNECTION_STRING)';
}

/**
 * Parses `NAMESPACE/HUB` or `NAMESPACE.servicebus.windows.net/HUB` (an `sb://` prefix is
 * tolerated). A namespace without a dot gets `.servicebus.windows.net` appended.
 *
 * @throws ConfigError (setting `eventhub`) for anything else.
 */
export function parseEventHubTarget(target: string): EventHubTarget {
  const trimmed = target.trim().replace(/^sb:\/\//i, '');
  const slash = trimmed.indexOf('/');
  if (slash <= 0 || slash === trimmed.length - 1 || trimmed.indexOf('/', slash + 1) !== -1) {
    throw new ConfigError('eventhub', `expected NAMESPACE/HUB or NAMESPACE.servicebus.windows.net/HUB, got ${shown(target)}`);
  }
  const ns = trimmed.slice(0, slash);
  const hub = trimmed.slice(slash + 1);
  let fullyQualifiedNamespace: string;
  if (ns.includes('.')) {
    if (!HOST.test(ns)) throw new ConfigError('eventhub', `not a valid namespace host name: ${shown(ns)}`);
    fullyQualifiedNamespace = ns.toLowerCase();
  } else {
    if (!NAMESPACE.test(ns)) throw new ConfigError('eventhub', `not a valid Event Hubs namespace name: ${shown(ns)}`);
    fullyQualifiedNamespace = `${ns.toLowerCase()}.servicebus.windows.net`;
  }
  if (!HUB.test(hub)) throw new ConfigError('eventhub', `not a valid event hub name: ${shown(hub)}`);
  return { fullyQualifiedNamespace, eventHubName: hub };
}

/**
 * Creates a producer for `target` ("namespace/hub" or "namespace.servicebus.windows.net/hub")
 * authenticated with `credential` (default: a new `DefaultAzureCredential`). The caller closes it.
 *
 * @throws ConfigError for a malformed target.
 */
export function createEventHubProducer(target: string, credential?: TokenCredential): EventHubProducerClient {
  const { fullyQualifiedNamespace, eventHubName } = parseEventHubTarget(target);
  return new EventHubProducerClient(fullyQualifiedNamespace, eventHubName, credential ?? new DefaultAzureCredential());
}

/**
 * Creates a producer from a SAS connection string. The hub comes from `eventHubName` or,
 * when omitted, from the string's `EntityPath`.
 *
 * @throws ConfigError (setting `EVENTHUB_CONNECTION_STRING`) when the string is unusable;
 *   the string itself is never included in the message.
 */
export function createEventHubProducerFromConnectionString(connectionString: string, eventHubName?: string): EventHubProducerClient {
  try {
    return eventHubName ? new EventHubProducerClient(connectionString, eventHubName) : new EventHubProducerClient(connectionString);
  } catch (err) {
    throw new ConfigError(
      'EVENTHUB_CONNECTION_STRING',
      'not a usable Event Hubs connection string (needs Endpoint, a key or SAS, and a hub name)',
      {
        cause: withoutString(err, connectionString),
      },
    );
  }
}

/**
 * The SDK's error with the connection string taken out of its message and stack: the SDK quotes the
 * whole string, key included, when it names no hub ("Either provide "eventHubName" or the
 * "connectionString": "Endpoint=…;SharedAccessKey=…""), and a cause is printed along with its error
 * (the logger, `util.inspect`, an uncaught rejection). The error keeps its type; only its text changes.
 */
function withoutString(err: unknown, connectionString: string): unknown {
  if (!(err instanceof Error) || connectionString === '') return err;
  const hide = (s: string): string => s.split(connectionString).join('<EVENTHUB_CONNECTION_STRING>');
  err.message = hide(err.message);
  if (err.stack) err.stack = hide(err.stack);
  return err;
}

/**
 * The CLI's choice of producer: `EVENTHUB_CONNECTION_STRING` when set (the hub taken from
 * `target` if given, else from `EVENTHUB_NAME`, else from the string's `EntityPath`);
 * otherwise `target` with `DefaultAzureCredential`.
 *
 * @throws ConfigError when neither a target nor a connection string is available, or when the
 *   target's namespace differs from the connection string's endpoint.
 */
export function createEventHubProducerFromEnv(
  target: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): EventHubProducerClient {
  const cs = env.EVENTHUB_CONNECTION_STRING?.trim();
  if (cs) {
    if (!target) return createEventHubProducerFromConnectionString(cs, env.EVENTHUB_NAME?.trim() || undefined);
    const parsed = parseEventHubTarget(target);
    const endpoint = /(?:^|;)\s*Endpoint\s*=\s*sb:\/\/([^/;]+)/i.exec(cs)?.[1]?.toLowerCase();
    // Refuse rather than silently publish to the connection string's namespace when the two disagree.
    if (endpoint !== undefined && endpoint !== parsed.fullyQualifiedNamespace) {
      throw new ConfigError(
        'EVENTHUB_CONNECTION_STRING',
        `its namespace ${endpoint} differs from the target namespace ${parsed.fullyQualifiedNamespace}`,
      );
    }
    return createEventHubProducerFromConnectionString(cs, parsed.eventHubName);
  }
  if (!target) throw new ConfigError('eventhub', 'give NAMESPACE/HUB (or set EVENTHUB_CONNECTION_STRING)');
  return createEventHubProducer(target);
}

/**
 * Views the SDK client through the {@link ProducerLike} port. Being a plain assignment, it is
 * also the compile-time proof that `EventHubProducerClient` satisfies the port: if an SDK
 * upgrade breaks that, this line stops compiling.
 */
export function asProducerLike(client: EventHubProducerClient): ProducerLike {
  return client;
}

import { inspect } from 'node:util';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { ConfigError } from '../../../shared/errors';
import {
  asProducerLike,
  createEventHubProducer,
  createEventHubProducerFromConnectionString,
  createEventHubProducerFromEnv,
  parseEventHubTarget,
} from '../../../shared/eventhubs/client';
import type { ProducerLike } from '../../../shared/eventhubs/publish';

/** A credential that is never asked for a token: constructing a client opens no connection. */
const unusedCredential: TokenCredential = {
  getToken: async (): Promise<AccessToken | null> => {
    throw new Error('no token expected in a unit test');
  },
};

const FAKE_CS =
  'Endpoint=sb://contoso-soc.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=bm90LWEta2V5;EntityPath=am-securityalert';

describe('parseEventHubTarget', () => {
  it('appends the public cloud suffix to a bare namespace', () => {
    expect(parseEventHubTarget('contoso-soc/am-securityalert')).toEqual({
      fullyQualifiedNamespace: 'contoso-soc.servicebus.windows.net',
      eventHubName: 'am-securityalert',
    });
  });

  it('keeps a fully qualified namespace (any cloud) and tolerates sb://', () => {
    expect(parseEventHubTarget('contoso-soc.servicebus.windows.net/hub').fullyQualifiedNamespace).toBe(
      'contoso-soc.servicebus.windows.net',
    );
    expect(parseEventHubTarget('sb://contoso-soc.servicebus.chinacloudapi.cn/hub').fullyQualifiedNamespace).toBe(
      'contoso-soc.servicebus.chinacloudapi.cn',
    );
  });

  it.each([
    'contoso-soc',
    'contoso-soc/',
    '/hub',
    'ns/hub/extra',
    'x/hub',
    'contoso soc/hub',
    'contoso-soc/hub name',
    'bad..host.example/hub',
  ])('refuses %j with a ConfigError', (target) => {
    expect(() => parseEventHubTarget(target)).toThrow(ConfigError);
  });
});

describe('createEventHubProducer', () => {
  it('targets the derived namespace and hub with the given credential', async () => {
    const client = createEventHubProducer('contoso-soc/am-securityalert', unusedCredential);
    expect(client.fullyQualifiedNamespace).toBe('contoso-soc.servicebus.windows.net');
    expect(client.eventHubName).toBe('am-securityalert');
    const port: ProducerLike = asProducerLike(client);
    expect(typeof port.createBatch).toBe('function');
    await client.close();
  });

  it('builds a client from a connection string, taking the hub from EntityPath or the argument', async () => {
    const fromEntityPath = createEventHubProducerFromConnectionString(FAKE_CS);
    expect(fromEntityPath.eventHubName).toBe('am-securityalert');
    await fromEntityPath.close();
    const withoutPath = FAKE_CS.replace(/;EntityPath=.*$/, '');
    const explicit = createEventHubProducerFromConnectionString(withoutPath, 'load-test');
    expect(explicit.eventHubName).toBe('load-test');
    await explicit.close();
  });

  it('refuses an unusable connection string without echoing it', () => {
    let caught: unknown;
    try {
      createEventHubProducerFromConnectionString('SharedAccessKey=s3cr3t-value');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).setting).toBe('EVENTHUB_CONNECTION_STRING');
    expect((caught as ConfigError).message).not.toContain('s3cr3t-value');
  });

  it('prefers EVENTHUB_CONNECTION_STRING from the environment and requires a target otherwise', async () => {
    const env = { EVENTHUB_CONNECTION_STRING: FAKE_CS.replace(/;EntityPath=.*$/, '') };
    const client = createEventHubProducerFromEnv('contoso-soc/other-hub', env);
    expect(client.fullyQualifiedNamespace).toBe('contoso-soc.servicebus.windows.net');
    expect(client.eventHubName).toBe('other-hub');
    await client.close();
    const fromName = createEventHubProducerFromEnv(undefined, { ...env, EVENTHUB_NAME: 'am-securityalert' });
    expect(fromName.eventHubName).toBe('am-securityalert');
    await fromName.close();
    expect(() => createEventHubProducerFromEnv('fabrikam-soc/other-hub', env)).toThrow(/differs from the target namespace/);
    expect(() => createEventHubProducerFromEnv(undefined, {})).toThrow(ConfigError);
  });
});

describe('a connection string where a target or a hub name belongs', () => {
  const KEY = 'bm90LWEtcmVhbC1rZXktYnV0LXNlY3JldA==';
  const withoutHub = `Endpoint=sb://contoso-soc.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=${KEY}`;

  it.each([
    ['a whole connection string', `${withoutHub};EntityPath=am-securityalert`],
    ['a connection string without EntityPath', withoutHub],
    ['a SAS URL', `sb://contoso-soc.servicebus.windows.net/am-securityalert?sr=x&sig=${KEY}&se=1&skn=send`],
    ['a target with a SAS appended', `contoso-soc/am-securityalert;SharedAccessSignature=SharedAccessSignature sr=x&sig=${KEY}`],
  ])('%s given as --eventhub is refused without its key in the message (the CLI prints it)', (_label, target) => {
    let caught: unknown;
    try {
      parseEventHubTarget(target);
    } catch (err) {
      caught = err;
    }

    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).message).not.toContain(KEY);
    expect((caught as ConfigError).message).toMatch(/EVENTHUB_CONNECTION_STRING/);
  });

  it('without a hub, is refused with a cause that no longer quotes it (a cause is printed with its error)', () => {
    let caught: unknown;
    try {
      createEventHubProducerFromConnectionString(withoutHub);
    } catch (err) {
      caught = err;
    }

    expect(caught).toBeInstanceOf(ConfigError);
    const cause = (caught as ConfigError).cause;
    expect(cause).toBeInstanceOf(TypeError);
    expect(inspect(caught)).not.toContain(KEY);
    expect((cause as Error).message).toContain('<EVENTHUB_CONNECTION_STRING>');
  });
});

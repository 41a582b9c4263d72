import { HttpRequest, InvocationContext } from '@azure/functions';
import { health } from '../../../functions/health';
import { setRuntime } from '../../../shared/runtime';

const ctx = () => new InvocationContext({ functionName: 'health', invocationId: 'inv-start' });
const REFERENCE = '@Microsoft.KeyVault(VaultName=soc-kv;SecretName=triage-hmac)';

let saved: string | undefined;
let stderr: jest.SpyInstance;
let written: string[];

beforeEach(() => {
  saved = process.env.AUTH_HMAC_SECRETS;
  setRuntime(undefined);
  written = [];
  stderr = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  });
});

afterEach(() => {
  stderr.mockRestore();
  if (saved === undefined) delete process.env.AUTH_HMAC_SECRETS;
  else process.env.AUTH_HMAC_SECRETS = saved;
  setRuntime(undefined);
});

describe('an HTTP request while the runtime cannot start', () => {
  it('answers 500 and logs http.failed naming the setting at fault, not its value', async () => {
    process.env.AUTH_HMAC_SECRETS = REFERENCE;

    const res = await health(new HttpRequest({ method: 'GET', url: 'http://localhost/api/health' }), ctx());

    expect(res.status).toBe(500);
    const lines = written.map((w) => JSON.parse(w) as Record<string, unknown>);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'error',
        event: 'http.failed',
        function: 'health',
        invocationId: 'inv-start',
        err: expect.objectContaining({ name: 'ConfigError', message: expect.stringContaining('AUTH_HMAC_SECRETS') }),
      }),
    ]);
    expect(written.join('')).not.toContain('triage-hmac');
  });
});

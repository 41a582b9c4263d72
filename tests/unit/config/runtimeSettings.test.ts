import { join } from 'node:path';
import { ConfigError } from '../../../shared/errors';
import { createLogger, silentLogger } from '../../../shared/log';
import { createRuntime } from '../../../shared/runtime';
import { openSqliteStore } from '../../../shared/store/sqlite';
import { ROOT, scratch } from '../../helpers/cli';

const base = { POLICY_DIR: join(ROOT, 'policies'), INDICATOR_FILES: join(ROOT, 'indicators', 'soc-global.csv'), OUTBOX_FILE: '' };
const store = () => openSqliteStore({ file: ':memory:' });

describe('runtime settings that would silently weaken the app in Azure', () => {
  it('refuses a Key Vault reference App Service could not resolve, instead of taking its text as the HMAC secret', async () => {
    const env = { ...base, AUTH_HMAC_SECRETS: '@Microsoft.KeyVault(VaultName=soc-kv;SecretName=triage-hmac)' };

    const started = createRuntime(env, { log: silentLogger, store: store() });

    await expect(started).rejects.toBeInstanceOf(ConfigError);
    await expect(started).rejects.toMatchObject({ setting: 'AUTH_HMAC_SECRETS' });
  });

  it('refuses an explicit policy folder that does not exist (every tenant would get the default contacts)', async () => {
    const env = { ...base, POLICY_DIR: join(scratch(), 'no-such-folder') };

    await expect(createRuntime(env, { log: silentLogger, store: store() })).rejects.toMatchObject({
      name: 'ConfigError',
      setting: 'POLICY_DIR',
    });
  });

  it('warns when no tenant policy was loaded at all', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({ level: 'info', sink: (l) => void lines.push(JSON.parse(l) as Record<string, unknown>) });

    const rt = await createRuntime({ ...base, POLICY_DIR: scratch() }, { log, store: store() });
    await rt.close();

    expect(lines.find((l) => l.event === 'runtime.no_policies')).toMatchObject({ level: 'warn' });
  });
});

import { settingsFromEnv } from '../../../shared/config/settings';
import { ConfigError } from '../../../shared/errors';

describe('settings from the environment', () => {
  it('uses the documented defaults when nothing is set', () => {
    const s = settingsFromEnv({});

    expect(s).toEqual({
      policyDir: './policies',
      indicatorFiles: ['./indicators/soc-global.csv'],
      outboxFile: './data/outbox.jsonl',
      maxBodyBytes: 1_048_576,
      eventHubName: 'am-securityalert',
      correlationRecheck: false,
    });
  });

  it('refuses an unknown LOG_LEVEL, naming the setting, instead of logging at info', () => {
    expect(() => settingsFromEnv({ LOG_LEVEL: 'bogus' })).toThrow(/LOG_LEVEL/);
    expect(() => settingsFromEnv({ LOG_LEVEL: 'debug' })).not.toThrow();
  });

  it('turns the post-commit correlation re-check on with CORRELATION_RECHECK=true', () => {
    expect(settingsFromEnv({ CORRELATION_RECHECK: 'true' }).correlationRecheck).toBe(true);
    expect(settingsFromEnv({ CORRELATION_RECHECK: 'false' }).correlationRecheck).toBe(false);
  });

  it('refuses a value that is neither true nor false, naming the setting', () => {
    let error: unknown;
    try {
      settingsFromEnv({ CORRELATION_RECHECK: 'yes' });
    } catch (e) {
      error = e;
    }

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).setting).toBe('CORRELATION_RECHECK');
  });

  it('splits INDICATOR_FILES on commas and drops empty parts', () => {
    expect(settingsFromEnv({ INDICATOR_FILES: ' a.csv, ,b.json ' }).indicatorFiles).toEqual(['a.csv', 'b.json']);
    expect(settingsFromEnv({ INDICATOR_FILES: '' }).indicatorFiles).toEqual([]);
  });

  it('refuses a body limit below 1 KiB', () => {
    expect(() => settingsFromEnv({ MAX_BODY_BYTES: '10' })).toThrow(ConfigError);
  });
});

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyRegistry, parsePolicy } from '../../../shared/config/policy';
import { silentLogger } from '../../../shared/log';
import { OutboxDispatcher } from '../../../shared/notify/outbox';
import { Pipeline } from '../../../shared/pipeline/pipeline';
import type { Store } from '../../../shared/store/port';
import { openSqliteStore, type SqliteStore } from '../../../shared/store/sqlite';
import { createBrain } from '../../../shared/triage/brain';
import { ROOT } from '../../helpers/cli';
import { signal } from '../../helpers/signal';

const shippedPolicyText = readFileSync(join(ROOT, 'policies', 'contoso.yaml'), 'utf8');
/** A SecurityAlert row of the Contoso workspace to build the two alerts from. */
const template = JSON.parse(readFileSync(join(ROOT, 'examples', 'attack-chain.ndjson'), 'utf8').split('\n')[0] as string) as Record<
  string,
  unknown
>;
const alerts = { kind: 'alerts' as const, source: 'test' };

function setup(policies: PolicyRegistry) {
  const store = openSqliteStore({ file: ':memory:' });
  const pipeline = new Pipeline({
    store,
    policies,
    brain: createBrain(),
    log: silentLogger,
    dispatcher: new OutboxDispatcher(store, { send: async () => undefined }, silentLogger),
    backoffMs: 1,
  });
  return { store, pipeline };
}

/** A SecurityAlert row: one detection at `at` with the given entities (no other field shared with the other alert). */
function row(id: string, name: string, at: string, tactics: string, entities: readonly Record<string, unknown>[]): string {
  return JSON.stringify({
    ...template,
    SystemAlertId: id,
    _ItemId: id,
    DisplayName: name,
    AlertName: name,
    Description: name,
    ExtendedProperties: JSON.stringify({ 'Analytic Rule Name': name, 'Event Grouping': 'SingleAlert' }),
    TimeGenerated: at,
    StartTime: at,
    EndTime: at,
    ProcessingEndTime: at,
    CompromisedEntity: '',
    Tactics: tactics,
    Techniques: '[]',
    Entities: JSON.stringify(entities.map((e, i) => ({ $id: String(i + 2), ...e }))),
  });
}

/** A Windows security event alert: the account as CONTOSO\alice, on a workstation. */
const windowsAlert = row(
  'b2000000-0000-4000-8000-000000000001',
  'Suspicious logon on workstation',
  '2026-11-21T01:05:00.000Z',
  'CredentialAccess',
  [
    { Type: 'account', Name: 'alice', NTDomain: 'CONTOSO' },
    { Type: 'host', HostName: 'ws-017', DnsDomain: 'corp.contoso.example' },
  ],
);
/** An Entra ID sign-in alert an hour later: the account as alice@contoso.com, from an external address. */
const signInAlert = row('b2000000-0000-4000-8000-000000000002', 'Anomalous sign-in', '2026-11-21T02:05:00.000Z', 'InitialAccess', [
  { Type: 'account', Name: 'alice', UPNSuffix: 'contoso.com' },
  { Type: 'ip', Address: '198.51.100.9' },
]);

const mappedPolicyText = `${shippedPolicyText.trimEnd()}\ndirectory:\n  domains:\n    - { netbios: CONTOSO, upnSuffixes: [contoso.com] }\n`;
const mappedPolicies = () => new PolicyRegistry([{ policy: parsePolicy(mappedPolicyText, 'contoso.yaml'), file: 'contoso.yaml' }]);

describe('pipeline correlation of one account spelt two ways', () => {
  it('relates CONTOSO\\alice and a later alice@contoso.com sign-in when the directory maps CONTOSO to contoso.com, and not without it', async () => {
    const mapped = setup(mappedPolicies());
    const shipped = setup(PolicyRegistry.fromDirectory(join(ROOT, 'policies')));

    const first = await mapped.pipeline.ingestText(windowsAlert, alerts);
    const second = await mapped.pipeline.ingestText(signInAlert, alerts);
    const firstUnmapped = await shipped.pipeline.ingestText(windowsAlert, alerts);
    const secondUnmapped = await shipped.pipeline.ingestText(signInAlert, alerts);

    const firstId = first.items[0]?.caseId as string;
    expect([first, second, firstUnmapped, secondUnmapped].map((o) => o.items[0]?.status)).toEqual([
      'triaged',
      'triaged',
      'triaged',
      'triaged',
    ]);
    expect(second.items[0]?.result?.killChain.relatedCaseIds).toEqual([firstId]);
    expect(second.items[0]?.result?.killChain.detail).toContain(
      'through directory alias account:contoso\\alice for account:alice@contoso.com',
    );
    // The shipped policy has no directory: the two spellings share no key.
    expect(secondUnmapped.items[0]?.result?.killChain.relatedCaseIds).toEqual([]);
  });

  it('stores no alias row: the account is stored under the spelling of its alert only', async () => {
    const { store, pipeline } = setup(mappedPolicies());

    const outcome = await pipeline.ingestText(windowsAlert, alerts);

    const caseId = outcome.items[0]?.caseId as string;
    const rowsUnder = async (key: string) =>
      (
        await store.findRelated({
          tenantId: outcome.items[0]?.tenantId as string,
          keys: [key],
          from: '2026-11-20T00:00:00.000Z',
          to: '2026-11-22T00:00:00.000Z',
          limitPerKey: 10,
        })
      ).sightings.map((s) => s.caseId);
    expect(await rowsUnder('account:contoso\\alice')).toEqual([caseId]);
    expect(await rowsUnder('account:alice@contoso.com')).toEqual([]);
  });

  it('stops linking at once when the mapping is removed, while a case stored under it is still in the window', async () => {
    const store = openSqliteStore({ file: ':memory:' });
    const pipelineFor = (policies: PolicyRegistry) =>
      new Pipeline({ store, policies, brain: createBrain(), log: silentLogger, backoffMs: 1 });
    const mapped = pipelineFor(mappedPolicies());
    const unmapped = pipelineFor(PolicyRegistry.fromDirectory(join(ROOT, 'policies')));

    const first = await mapped.ingestText(windowsAlert, alerts);
    const afterRemoval = await unmapped.ingestText(signInAlert, alerts);

    expect([first, afterRemoval].map((o) => o.items[0]?.status)).toEqual(['triaged', 'triaged']);
    expect(afterRemoval.items[0]?.result?.killChain.relatedCaseIds).toEqual([]);
  });
});

describe('two processes triaging the two spellings at the same moment on one SQLite file', () => {
  let dir: string;
  const opened: SqliteStore[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'triage-alias-race-'));
  });
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** One connection to `file`, as one process would open it. */
  function connect(file: string): SqliteStore {
    const s = openSqliteStore({ file });
    opened.push(s);
    return s;
  }

  /** The real store, its first look-up held by `afterFirstLookup` and its writes by `beforePut`: forces the interleaving. */
  function gated(store: Store, afterFirstLookup: () => Promise<void>, beforePut?: () => Promise<void>): Store {
    let lookups = 0;
    return new Proxy(store, {
      get(target, prop) {
        if (prop === 'findRelated')
          return async (...args: Parameters<Store['findRelated']>) => {
            const answer = await target.findRelated(...args);
            if (lookups++ === 0) await afterFirstLookup();
            return answer;
          };
        if (prop === 'putCase')
          return async (...args: Parameters<Store['putCase']>) => {
            await beforePut?.();
            return target.putCase(...args);
          };
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  }

  it('finds the case the directory links it to in the re-check after its commit, when both looked up before either commit', async () => {
    // Arrange: A looks up, B looks up, A commits, B commits (B writes once A is done: one thread, two write locks)
    const file = join(dir, 'shared.db');
    let arrivals = 0;
    const bothLookedUp = signal();
    const meet = async () => {
      if (++arrivals === 2) bothLookedUp.fire();
      await bothLookedUp.done;
    };
    const aDone = signal();
    const processOn = (store: Store) =>
      new Pipeline({ store, policies: mappedPolicies(), brain: createBrain(), log: silentLogger, backoffMs: 1 });
    const a = processOn(gated(connect(file), meet));
    const b = processOn(gated(connect(file), meet, () => aDone.done));

    // Act
    const [outA, outB] = await Promise.all([
      a.ingestText(windowsAlert, alerts).finally(() => aDone.fire()),
      b.ingestText(signInAlert, alerts),
    ]);

    // Assert: the sign-in, committed second, was re-checked through its alias key and now lists the Windows case
    const first = outA.items[0];
    const second = outB.items[0];
    const stored = await connect(file).getCase(second?.tenantId as string, second?.caseId as string);
    expect(first?.result?.killChain.relatedCaseIds).toEqual([]);
    expect(stored?.revision).toBe(2);
    expect(stored?.result.killChain.relatedCaseIds).toEqual([first?.caseId]);
    expect(stored?.result.killChain.detail).toContain('through directory alias account:contoso\\alice for account:alice@contoso.com');
  });
});

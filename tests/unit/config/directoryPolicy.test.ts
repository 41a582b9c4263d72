import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePolicy } from '../../../shared/config/policy';
import { PolicyError } from '../../../shared/errors';
import { SAMPLES } from '../../helpers/cli';

const example = readFileSync(join(SAMPLES, 'policy.example.yaml'), 'utf8');

/** The sample runbook with a `directory` section appended (its body given as YAML lines under `directory:`). */
function withDirectory(...lines: string[]): string {
  return `${example.trimEnd()}\ndirectory:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
}

function issuesOf(text: string): { path: string; reason: string }[] {
  try {
    parsePolicy(text, 'test.yaml');
  } catch (e) {
    if (e instanceof PolicyError) return [...e.issues];
    throw e;
  }
  return [];
}

/** An issue path without the `(line N)` the policy loader may add. */
function bare(path: string): string {
  return path.replace(/ \(line \d+\)$/, '');
}

describe('tenant policy directory section', () => {
  it('maps NetBIOS domains to UPN suffixes, compared case-insensitively (kept lower-case, no trailing dot)', () => {
    const text = withDirectory(
      'domains:',
      '  - netbios: CONTOSO',
      '    upnSuffixes: [Contoso.com, contoso.onmicrosoft.com.]',
      '  - { netbios: fabrikam-dev, upnSuffixes: [dev.fabrikam.example] }',
    );

    const p = parsePolicy(text, 'test.yaml');

    expect(p.directory).toEqual({
      domains: [
        { netbios: 'contoso', upnSuffixes: ['contoso.com', 'contoso.onmicrosoft.com'] },
        { netbios: 'fabrikam-dev', upnSuffixes: ['dev.fabrikam.example'] },
      ],
    });
  });

  it('refuses a UPN suffix mapped to two NetBIOS domains, naming the second one and the first', () => {
    const text = withDirectory(
      'domains:',
      '  - { netbios: CONTOSO, upnSuffixes: [contoso.com] }',
      '  - { netbios: CORP, upnSuffixes: [corp.contoso.com, CONTOSO.COM] }',
    );

    const issues = issuesOf(text);

    expect(issues.map((i) => ({ ...i, path: bare(i.path) }))).toEqual([
      {
        path: '$.directory.domains[1].upnSuffixes[1]',
        reason:
          'UPN suffix "contoso.com" is mapped to two NetBIOS domains, "contoso" and "corp" (also $.directory.domains[0].upnSuffixes[0])',
      },
    ]);
  });

  it('refuses a NetBIOS domain listed twice, whatever its case', () => {
    const text = withDirectory(
      'domains:',
      '  - { netbios: CONTOSO, upnSuffixes: [contoso.com] }',
      '  - { netbios: contoso, upnSuffixes: [contoso.onmicrosoft.com] }',
    );

    const issues = issuesOf(text);

    expect(issues.map((i) => bare(i.path))).toEqual(['$.directory.domains[1].netbios']);
    expect(issues[0]?.reason).toContain('listed twice');
  });

  it('refuses a NetBIOS name or a UPN suffix that is not one, with its path', () => {
    const text = withDirectory('domains:', '  - { netbios: NT AUTHORITY, upnSuffixes: ["@contoso.com", contoso.com] }');

    const issues = issuesOf(text);

    expect(issues.map((i) => bare(i.path))).toEqual(['$.directory.domains[0].netbios', '$.directory.domains[0].upnSuffixes[0]']);
    expect(issues[0]?.reason).toContain('NetBIOS domain name');
    expect(issues[1]?.reason).toContain('DNS name');
  });

  it('refuses a UPN suffix written as the NetBIOS name (a dotted name no Windows log spells as DOMAIN\\user)', () => {
    const text = withDirectory('domains:', '  - { netbios: contoso.com, upnSuffixes: [contoso.com] }');

    const issues = issuesOf(text);

    expect(issues.map((i) => bare(i.path))).toEqual(['$.directory.domains[0].netbios']);
  });
});

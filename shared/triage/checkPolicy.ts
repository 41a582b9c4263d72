/**
 * Semantic checks of a tenant policy that the zod schema cannot do without
 * knowing the playbooks and phases: for `triage policy check` and policy loading.
 * The brain tolerates every issue found here (unknown playbook → generic, unknown
 * phase → ignored, unknown scenario → no threat level), but each one silently
 * weakens triage, so an operator should see them.
 */
import { isPlaybookId, PLAYBOOK_IDS } from '../../playbooks';
import type { TenantPolicy } from '../config/policy';
import { compileKillChain } from '../correlation/killchain';
import type { InputIssue } from '../errors';
import { DEFAULT_SCENARIOS } from '../severity/nist';

/** Problems of a validated policy that the brain would work around; empty when none. */
export function checkPolicy(policy: TenantPolicy): InputIssue[] {
  const issues: InputIssue[] = [];
  for (const [key, rule] of Object.entries(policy.rules)) {
    if (!isPlaybookId(rule.playbook)) {
      issues.push({
        path: `$.rules[${JSON.stringify(key)}].playbook`,
        reason: `unknown playbook "${rule.playbook}" (known: ${PLAYBOOK_IDS.join(', ')})`,
      });
    }
    if (
      rule.scenario !== undefined &&
      !Object.hasOwn(policy.scenarios, rule.scenario) &&
      !Object.hasOwn(DEFAULT_SCENARIOS, rule.scenario)
    ) {
      issues.push({ path: `$.rules[${JSON.stringify(key)}].scenario`, reason: `unknown scenario "${rule.scenario}"` });
    }
  }
  for (const bad of compileKillChain(policy.killChain).invalid) {
    issues.push({ path: bad.path, reason: `"${bad.value}" is not a kill-chain phase` });
  }
  return issues;
}

/** The operator's rules, as routing offers them each message (shared/rules/rule-engine.ts implements it; docs/rules.md). */
import type { RuleMessage } from '../../rules/rule-match';
import type { RuleOutcome } from '../../rules/rule-engine';

export interface MessageRules {
  /** Evaluates the rules for a message and starts its deliveries to their targets. */
  route(message: RuleMessage): Promise<RuleOutcome>;
  /** The deliveries under way of the current invocation have ended (an entry point waits for it before its invocation returns). */
  settled(): Promise<void>;
}

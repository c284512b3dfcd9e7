/** The command table: the single source of parsing, help and dispatch. */
import type { CommandSpec } from './command.js';
import { configCheck } from './commands/config-check.js';
import { emulate } from './commands/emulate.js';
import { eventsTail } from './commands/events-tail.js';
import { run } from './commands/run.js';
import { subscriptionsCreate } from './commands/subscriptions-create.js';
import { subscriptionsDelete } from './commands/subscriptions-delete.js';
import { subscriptionsList } from './commands/subscriptions-list.js';
import { subscriptionsSync } from './commands/subscriptions-sync.js';
import { tokenRevoke, tokenRotate, tokenStatus } from './commands/token.js';
import { trigger } from './commands/trigger.js';

export const COMMANDS: readonly CommandSpec[] = Object.freeze([
  run,
  subscriptionsList,
  subscriptionsCreate,
  subscriptionsDelete,
  subscriptionsSync,
  tokenStatus,
  tokenRotate,
  tokenRevoke,
  eventsTail,
  configCheck,
  emulate,
  trigger,
]);

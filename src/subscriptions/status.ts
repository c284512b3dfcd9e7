/**
 * What sync does with a subscription in each status (README.md "Commands", `subscriptions sync`; the statuses:
 * https://dev.twitch.tv/docs/api/reference/#get-eventsub-subscriptions). The one place that policy lives:
 * plan, the daemon's revocation handling and `subscriptions list` all ask here.
 */

/** Working, or about to be: kept as it is. */
const HEALTHY = new Set(['enabled', 'webhook_callback_verification_pending']);
/** Failures our side can fix (receiver down or slow): deleted and created again. */
const RECREATE = new Set(['webhook_callback_verification_failed', 'notification_failures_exceeded']);

export type StatusAction = 'keep' | 'recreate' | 'blocked';

/**
 * `blocked` for everything else: authorization_revoked, user_removed, moderator_removed, version_removed,
 * chat_user_banned and beta_maintenance need a human (a new grant, a new version), and recreating would fail
 * or churn. An unknown status is treated the same way, to be safe: reported, never recreated in a loop.
 */
export function statusAction(status: string): StatusAction {
  if (HEALTHY.has(status)) return 'keep';
  if (RECREATE.has(status)) return 'recreate';
  return 'blocked';
}

// src/alerts.ts: listens for phi_guard's alert notifications (SPEC §8:
// `NOTIFY phi_guard_alert` with a JSON payload {kind, ts, db_user,
// app_user, tenant, detail}).
//
// LISTEN belongs to a session: use a dedicated connection (a node-postgres
// Client, or a PoolClient kept for the purpose), never one reached through a
// transaction-mode pooler. The listener only parses and hands over; a
// payload it cannot parse goes to onError, whose message does not repeat
// the payload.

import type { Queryable } from './context.js';

/** The channel phi_guard notifies. */
export const ALERT_CHANNEL = 'phi_guard_alert';

/** One alert, as phi_guard sends it. */
export interface PhiAlert {
  /** e.g. `bulk_disclosure`, `repeated_denials`, `break_glass_open`, `safeguard_changed`, `off_hours`. */
  kind: string;
  /** When it happened (ISO 8601). */
  ts: string | null;
  db_user: string | null;
  app_user: string | null;
  tenant: string | null;
  detail: Record<string, unknown>;
}

/** A node-postgres notification message. */
export interface NotificationLike {
  channel: string;
  payload?: string | undefined;
}

/** A connection that emits node-postgres `notification` events (a pg Client or PoolClient). */
export interface NotificationClient extends Queryable {
  on(event: 'notification', listener: (message: NotificationLike) => void): unknown;
  removeListener(event: 'notification', listener: (message: NotificationLike) => void): unknown;
}

export interface AlertListenerOptions {
  /** Called for each alert, in the order the server sent them. */
  onAlert(alert: PhiAlert): void;
  /** Called with an AlertPayloadError for a payload that is not an alert (default: ignored). */
  onError?(err: Error): void;
  /** The channel (default `phi_guard_alert`). */
  channel?: string;
}

/** A running listener. */
export interface AlertSubscription {
  /** The channel listened on. */
  readonly channel: string;
  /** UNLISTEN and stop calling onAlert. */
  stop(): Promise<void>;
}

/** A notification on the alert channel whose payload is not an alert object. */
export class AlertPayloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AlertPayloadError';
  }
}

const nullableText = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** Parses an alert payload; throws AlertPayloadError (without the payload) when it is not one. */
export function parseAlert(payload: string | undefined): PhiAlert {
  let value: unknown;
  try {
    value = JSON.parse(payload ?? '');
  } catch {
    throw new AlertPayloadError('alert payload is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AlertPayloadError('alert payload is not a JSON object');
  }
  const o = value as Record<string, unknown>;
  if (typeof o.kind !== 'string' || o.kind === '') throw new AlertPayloadError('alert payload has no kind');
  const detail = typeof o.detail === 'object' && o.detail !== null && !Array.isArray(o.detail)
    ? o.detail as Record<string, unknown> : {};
  return {
    kind: o.kind,
    ts: nullableText(o.ts),
    db_user: nullableText(o.db_user),
    app_user: nullableText(o.app_user),
    tenant: nullableText(o.tenant),
    detail,
  };
}

/**
 * Runs `LISTEN phi_guard_alert` on `client` and calls `onAlert` with each
 * parsed alert until `stop()`.
 */
export async function listenPhiAlerts(client: NotificationClient, options: AlertListenerOptions): Promise<AlertSubscription> {
  const channel = options.channel ?? ALERT_CHANNEL;
  if (typeof channel !== 'string' || channel === '' || channel.includes('\u0000')) {
    throw new TypeError('channel must be a non-empty string');
  }
  const quoted = `"${channel.replace(/"/g, '""')}"`;
  let active = true;
  const listener = (message: NotificationLike): void => {
    if (!active || message.channel !== channel) return;
    let alert: PhiAlert;
    try {
      alert = parseAlert(message.payload);
    } catch (err) {
      options.onError?.(err as Error);
      return;
    }
    options.onAlert(alert);
  };
  client.on('notification', listener);
  try {
    await client.query(`LISTEN ${quoted}`);
  } catch (err) {
    client.removeListener('notification', listener);
    throw err;
  }
  return {
    channel,
    async stop() {
      if (!active) return;
      active = false;
      client.removeListener('notification', listener);
      await client.query(`UNLISTEN ${quoted}`);
    },
  };
}

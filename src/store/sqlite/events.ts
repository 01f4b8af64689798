// The event log on SQLite: every change's events written in the change's
// transaction, events appended by callers, and the getEvents query (its
// filters and page cursor are ../events.ts's). Who may see which event is the caller's to decide.

import type Database from 'better-sqlite3';
import { prepareAll } from './connection.js';
import type { StoreContext } from './context.js';
import { eventId, eventPage, eventPageParams, eventParams, type EventFields, type EventPageParams } from '../events.js';
import { toEvent, type EventRow } from '../rows.js';
import type { Event, EventObjectType, EventPage, EventQuery, EventType, NewEvent } from '../types.js';

const EVENT_SQL = {
  // published_at never goes below the newest event's, so time order is
  // commit order even when the clock steps back.
  insertEvent: `
    INSERT INTO event (
      id,
      published_at,
      actor,
      type,
      object_type,
      object_id,
      repository,
      tag,
      digest,
      previous_digest,
      count,
      reason
    ) VALUES (
      :id,
      max(:now, coalesce((SELECT max(published_at) FROM event), 0)),
      :actor,
      :type,
      :objectType,
      :objectId,
      :repository,
      :tag,
      :digest,
      :previousDigest,
      :count,
      :reason
    )
    RETURNING *`,
};

/** @internal */
export function prepareEventStatements(db: Database.Database): Record<keyof typeof EVENT_SQL, Database.Statement> & { queries: EventQueries } {
  let writes: Record<keyof typeof EVENT_SQL, Database.Statement> | undefined;
  return {
    queries: new EventQueries(db),
    // Prepared on first write: a read-only open of a version-6 file, whose
    // events have no count or reason yet, reads them all the same.
    get insertEvent() {
      return (writes ??= prepareAll(db, EVENT_SQL)).insertEvent;
    },
  };
}

/**
 * @internal The getEvents query: a statement per combination of filters, built from
 * fixed fragments (never from values) and prepared on first use.
 */
class EventQueries {
  readonly #statements = new Map<string, Database.Statement>();
  constructor(private readonly db: Database.Database) {}

  /**
   * A page of the events the query's filters select, newest first.
   * @throws StoreError EVENT_INVALID, NAME_INVALID, PAGINATION_NUMBER_INVALID.
   */
  page(query: EventQuery): EventPage {
    const params = eventPageParams(query);
    return eventPage(this.#statement(params).all(params) as EventRow[], params.limit - 1);
  }

  #statement(params: EventPageParams): Database.Statement {
    const where: string[] = [];
    if (params.actor !== null) where.push('actor = :actor');
    if (params.type !== null) where.push('type = :type');
    if (params.objectType !== null) where.push('object_type = :objectType');
    if (params.repository !== null) where.push('repository = :repository');
    if (params.before !== null) where.push('published_at < :before');
    if (params.after !== null) where.push('published_at >= :after');
    if (params.cursorAt !== null) {
      where.push('(published_at < :cursorAt OR (published_at = :cursorAt AND seq < :cursorSeq))');
    }
    const key = where.join(' AND ');
    let statement = this.#statements.get(key);
    if (!statement) {
      statement = this.db.prepare(`
        SELECT *
        FROM event
        ${where.length ? `WHERE ${key}` : ''}
        ORDER BY published_at DESC, seq DESC
        LIMIT :limit`);
      this.#statements.set(key, statement);
    }
    return statement;
  }
}

// --- inside a transaction -----------------------------------------------------

/** Writes an event of the change the current transaction makes; the arguments are already checked. */
export function recordEvent(
  cx: StoreContext,
  actor: string,
  now: number,
  type: EventType,
  objectType: EventObjectType,
  objectId: string,
  fields: EventFields,
): void {
  cx.sql.events.insertEvent.run({
    id: eventId(now),
    now,
    actor,
    type,
    objectType,
    objectId,
    repository: fields.repository ?? null,
    tag: fields.tag ?? null,
    digest: fields.digest ?? null,
    previousDigest: fields.previousDigest ?? null,
    count: fields.count ?? null,
    reason: fields.reason ?? null,
  });
}

// --- the store's methods ------------------------------------------------------

/** See Store.createEvent. */
export function createEvent(cx: StoreContext, event: NewEvent): Event {
  const params = eventParams(event);
  return cx.write(() => toEvent(cx.sql.events.insertEvent.get({ ...params, id: eventId(), now: Date.now() }) as EventRow));
}

/** See Store.getEvents. */
export function getEvents(cx: StoreContext, query: EventQuery): EventPage {
  return cx.read(() => cx.sql.events.queries.page(query));
}

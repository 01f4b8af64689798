// A gate for tag writes, to make an interleaving of transactions certain
// rather than lucky: a trigger holds every transaction that writes a tag,
// inside that transaction, until the test opens the gate (a session-level
// advisory lock the test's own connection holds).

import type postgres from 'postgres';

/** The advisory lock key of the gate. */
const GATE = 4711;

/** A gate on a database's tag writes: closed by `close`, opened by `open`. */
export interface Gate {
  close(): Promise<void>;
  open(): Promise<void>;
  /** Resolves once `n` backends of the database wait for a lock (the gated writer, and whatever waits on it). */
  waiting(n: number): Promise<void>;
}

/** Installs the gate's trigger through `sql` (one connection: the lock is its session's). */
export async function gateTagWrites(sql: postgres.Sql): Promise<Gate> {
  await sql.unsafe(`
    CREATE FUNCTION gate_tag_write() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_advisory_xact_lock_shared(${GATE});
      RETURN NEW;
    END $$;
    CREATE TRIGGER gate_tag_write BEFORE INSERT OR UPDATE ON tag FOR EACH ROW EXECUTE FUNCTION gate_tag_write();`);
  return {
    close: async () => void (await sql`SELECT pg_advisory_lock(${GATE})`),
    open: async () => void (await sql`SELECT pg_advisory_unlock(${GATE})`),
    async waiting(n) {
      for (;;) {
        const [{ waiting }] = await sql<{ waiting: number }[]>`
          SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`;
        if (waiting >= n) return;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
  };
}

// Who holds an upload claim on a SQLite store, so that another process on
// the same machine can tell that the holder has died and take the claim at
// once instead of waiting out its lease. A pid alone is not enough (pids are
// reused, and each container has its own), so the identity is Linux's boot
// id, the pid namespace, the pid and the process's start time, all read from
// /proc. Where /proc does not tell (another system, another machine sharing
// the file, another pid namespace) a holder is never taken for dead: its
// claim lasts its lease.

import { readFileSync, readlinkSync } from 'node:fs';

let own: string | null | undefined;

/** The start time of process `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat), and whether it has exited (a zombie). */
function processStat(pid: number): { start: string; exited: boolean } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold anything: the fields after its last ')' are plain.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { start: fields[19], exited: fields[0] === 'Z' || fields[0] === 'X' };
}

/** Where pids mean the same thing as in this process: the boot and the pid namespace. */
function machine(): string | undefined {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return `${boot}|${readlinkSync('/proc/self/ns/pid')}`;
  } catch {
    return undefined;
  }
}

/** This process's identity as a claim's holder (boot|namespace|pid|start), or null where /proc cannot give one. */
export function processIdentity(): string | null {
  if (own !== undefined) return own;
  const where = machine();
  const stat = processStat(process.pid);
  own = where === undefined || stat === undefined ? null : `${where}|${process.pid}|${stat.start}`;
  return own;
}

/** Whether the process named by `identity` (from processIdentity) is known to have exited: false when it lives or when this process cannot tell. */
export function processGone(identity: string): boolean {
  const mine = processIdentity()?.split('|');
  const [boot, namespace, pid, start] = identity.split('|');
  if (mine === undefined || boot !== mine[0] || namespace !== mine[1] || !/^\d+$/.test(pid ?? '')) return false;
  const stat = processStat(Number(pid));
  if (stat === undefined) return !alive(Number(pid));
  return stat.exited || stat.start !== start;
}

/**
 * Whether a process of that pid exists, for when /proc does not show it
 * (mounted with hidepid, another user's process): a signal 0 to it is
 * refused (EPERM) only when it exists.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

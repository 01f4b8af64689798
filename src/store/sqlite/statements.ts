// Every statement the store runs, prepared once per connection with named
// parameters, grouped by the concern that owns it. No value is ever spliced
// into SQL text (the only splices are fixed fragments, such as gc's rules).

import type Database from 'better-sqlite3';
import { prepareBlobStatements } from './blobs.js';
import { prepareEventStatements } from './events.js';
import { prepareGcStatements } from './gc.js';
import { prepareInspectionStatements } from './inspection.js';
import { prepareLockStatements } from './locks.js';
import { prepareMaintenanceStatements } from './maintenance.js';
import { prepareManifestStatements } from './manifests.js';
import { prepareNotificationStatements } from './notifications.js';
import { preparePullStatements, preparePullStatsStatements } from './pulls.js';
import { prepareUsageStatements } from './sizes.js';
import { prepareRepositoryStatements } from './repositories.js';
import { prepareRetentionStatements } from './retention.js';
import { prepareSubscriptionStatements } from './subscriptions.js';
import { prepareTagDetailStatements } from './tag-details.js';
import { prepareTagStatements } from './tags.js';
import { prepareUploadStatements } from './uploads.js';

/** @internal The statements of one connection, grouped by concern: the store's own, and the benchmark's. */
export interface Statements {
  repositories: ReturnType<typeof prepareRepositoryStatements>;
  manifests: ReturnType<typeof prepareManifestStatements>;
  tags: ReturnType<typeof prepareTagStatements>;
  blobs: ReturnType<typeof prepareBlobStatements>;
  gc: ReturnType<typeof prepareGcStatements>;
  retention: ReturnType<typeof prepareRetentionStatements>;
  events: ReturnType<typeof prepareEventStatements>;
  subscriptions: ReturnType<typeof prepareSubscriptionStatements>;
  inspection: ReturnType<typeof prepareInspectionStatements>;
  notifications: ReturnType<typeof prepareNotificationStatements>;
  uploads: ReturnType<typeof prepareUploadStatements>;
  locks: ReturnType<typeof prepareLockStatements>;
  pulls: ReturnType<typeof preparePullStatements>;
  usage: ReturnType<typeof prepareUsageStatements>;
  tagDetails: ReturnType<typeof prepareTagDetailStatements>;
  pullStats: ReturnType<typeof preparePullStatsStatements>;
  maintenance: ReturnType<typeof prepareMaintenanceStatements>;
}

/**
 * @internal Every statement of every concern, prepared on `db`: the store's own, and the benchmark's.
 * @throws SqliteError when the schema is not the store's.
 */
export function prepareStatements(db: Database.Database): Statements {
  let notifications: Statements['notifications'] | undefined;
  let uploads: Statements['uploads'] | undefined;
  let locks: Statements['locks'] | undefined;
  let pulls: Statements['pulls'] | undefined;
  let usage: Statements['usage'] | undefined;
  let tagDetails: Statements['tagDetails'] | undefined;
  let pullStats: Statements['pullStats'] | undefined;
  let maintenance: Statements['maintenance'] | undefined;
  let retention: Statements['retention'] | undefined;
  return {
    repositories: prepareRepositoryStatements(db),
    manifests: prepareManifestStatements(db),
    tags: prepareTagStatements(db),
    blobs: prepareBlobStatements(db),
    gc: prepareGcStatements(db),
    subscriptions: prepareSubscriptionStatements(db),
    inspection: prepareInspectionStatements(db),
    events: prepareEventStatements(db),
    // Prepared on first use: a read-only open of a version-1 file (which has
    // no notification_cursor yet) serves everything else.
    get notifications() {
      return (notifications ??= prepareNotificationStatements(db));
    },
    // The same for a version-2 file, which has no upload_session yet.
    get uploads() {
      return (uploads ??= prepareUploadStatements(db));
    },
    // The same for a version-4 file, which has no blob_lock yet.
    get locks() {
      return (locks ??= prepareLockStatements(db));
    },
    // The same for a version-5 file, which has no repository.pulled_at yet.
    get pulls() {
      return (pulls ??= preparePullStatements(db));
    },
    // The same for a version-6 file, which has no kept sizes yet.
    get usage() {
      return (usage ??= prepareUsageStatements(db));
    },
    // The same for a version-6 file, which has no tag.pulled_at yet.
    get tagDetails() {
      return (tagDetails ??= prepareTagDetailStatements(db));
    },
    // The same for a version-6 file, which has no manifest.pull_count yet.
    get pullStats() {
      return (pullStats ??= preparePullStatsStatements(db));
    },
    // The same for a version-6 file, which has no event_horizon or job_lease yet.
    get maintenance() {
      return (maintenance ??= prepareMaintenanceStatements(db));
    },
    // The same for a version-6 file, which has no tag.pulled_at yet.
    get retention() {
      return (retention ??= prepareRetentionStatements(db));
    },
  };
}

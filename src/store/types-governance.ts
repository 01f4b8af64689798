// Keeping a registry in shape (pull statistics, sizes and quotas, immutable tags, retention): apart from types.ts's spec vocabulary, which re-exports these.

/**
 * Pulls of one thing in a repository, added up by the caller (Store.recordPulls):
 * of manifest `digest` (by `tag` when given: the tag's too), of `tag` alone
 * (a HEAD that resolves it), or, with neither, the repository's use alone
 * (a mirror's cache notes it for gc's eviction).
 */
export interface Pull {
  repo: string;
  digest?: string;
  tag?: string;
  /** The latest of these pulls. */
  at: Date;
  /**
   * How many pulls the entry stands for (default 1); 0 records the time
   * alone (pull times carried over without their counts), with no PULL
   * event. A repository's use alone counts none.
   */
  count?: number;
}

/** What Store.recordPulls may do beside counting. */
export interface RecordPullsOptions {
  /** Write a PULL event per entry that pulled a manifest or a tag still there (default false). */
  events?: boolean;
}

/** A repository of a namespace with the blobs linked into it: what an eviction from a mirror's cache weighs (Store.namespaceUsage). */
export interface NamespaceRepository {
  name: string;
  createdAt: Date;
  /** The latest pull recorded; undefined when none was since the repository was created. */
  pulledAt?: Date;
  /** In digest order; a blob linked into several repositories is listed in each. */
  blobs: { digest: string; size: number }[];
}

/** A tag as retention weighs it (Store.repositoryLinks). */
export interface TagLink {
  tag: string;
  /** The manifest it points at. */
  digest: string;
  /** When the tag was last set. */
  updatedAt: Date;
  /** Its last pull, by tag or of its manifest by digest; absent: never pulled. */
  pulledAt?: Date;
}

/** A repository's tags and manifests read in one snapshot (Store.repositoryLinks): what a retention plan weighs. */
export interface RepositoryLinks {
  tags: TagLink[];
  manifests: ManifestLinks[];
}

/** A manifest of a repository with what keeps it or others alive (Store.repositoryLinks). */
export interface ManifestLinks {
  digest: string;
  /** Its last push: the grace period of an untagged manifest counts from it. */
  pushedAt: Date;
  /** The digest of its subject, present or not. */
  subject?: string;
  /** The child manifests it lists (an index), present or not. */
  children: string[];
}

/** A tag as a retention plan saw it (Store.retireTags): it goes only while it still is so. */
export interface TagToRetire {
  tag: string;
  /** The manifest it pointed at. */
  digest: string;
  /** When the tag was last set (TagLink.updatedAt). */
  updatedAt: Date;
  /** When that manifest was last pushed (ManifestLinks.pushedAt). */
  pushedAt: Date;
  /** Why it goes: its DELETE event's reason. */
  reason?: string;
}

/** A manifest a retention plan found collectable (Store.retireManifests). */
export interface ManifestToRetire {
  digest: string;
  /** Why it goes: its DELETE event's reason. */
  reason?: string;
}

/** Tags that, once they exist, no one but an admin may move or delete (StorePolicy.immutable). */
export interface ImmutableRule {
  /** A repository pattern: `*` within a path segment, `**` whole segments (`rel/*`). */
  repositories: string;
  /** Tag patterns: `*` any run of characters, `?` one (`v*`, `latest`). */
  tags: string[];
}

/** How many bytes a namespace may hold, each blob counted once (StorePolicy.quotas). */
export interface Quota {
  /** A repository name's first component: `acme` holds acme/app and acme/team/app. */
  namespace: string;
  /** Bytes of blobs linked in the namespace's repositories, each blob once. */
  maxSize: number;
}

/**
 * What a store enforces inside its transactions, beyond the spec: given at
 * open, checked there (ARGUMENT_INVALID names a malformed rule), and
 * reported by Store.policy.
 */
export interface StorePolicy {
  immutable?: ImmutableRule[];
  quotas?: Quota[];
}

/** What Store.usage reads. */
export interface UsageOptions {
  /** One namespace only (a name of one path component). */
  namespace?: string;
  /** With `namespace`: its repositories too, each with its bytes. */
  repositories?: boolean;
}

/**
 * Storage in use, as the store keeps it current on every link and delete
 * (Store.usage): blobs' bytes only (manifests are not blobs).
 */
export interface Usage {
  /** Every blob the registry holds, each once. */
  total: { blobs: number; bytes: number };
  /**
   * Each namespace that has a repository or a quota, by name; with
   * `namespace` asked, that one only (with `bytes` 0 when it has nothing).
   */
  namespaces: NamespaceUsage[];
  /** With `namespace` and `repositories` asked: its repositories, by name. */
  repositories?: RepositoryUsage[];
}

/** A namespace's usage: its blobs' bytes, each once; its repositories; its quota when one is set. */
export interface NamespaceUsage {
  namespace: string;
  bytes: number;
  repositories: number;
  /** The quota's maxSize, in bytes. */
  quota?: number;
}

/** A repository's usage: the bytes of the blobs linked in it, each once. */
export interface RepositoryUsage {
  repository: string;
  bytes: number;
}

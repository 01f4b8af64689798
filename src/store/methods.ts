// The contract's interfaces seen as lists of methods: how a backend derives
// one face from another (SQLite's asynchronous face from its synchronous
// store) with the compiler checking that no method is left out.

/** The names of an interface's methods. */
type MethodsOf<T> = { [K in keyof T]: T[K] extends (...args: never[]) => unknown ? K : never }[keyof T] & string;

/**
 * The methods of `T` (one of the interfaces above), synchronous: the same
 * arguments, the same errors thrown instead of rejected. What SQLite's
 * MetadataStore and its cursors and sessions implement.
 */
export type Synchronous<T> = {
  [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]: T[K] extends (...args: infer A) => infer R ? (...args: A) => Awaited<R> : never;
};

/** Fails to compile unless `names` lists every method of `T`, once. */
export function methodList<T>() {
  return <const N extends readonly MethodsOf<T>[]>(names: N & ([MethodsOf<T>] extends [N[number]] ? unknown : never)): readonly MethodsOf<T>[] => names;
}

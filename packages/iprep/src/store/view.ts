/**
 * The local view of the shared decisions that every store keeps in memory: what `snapshot()` returns
 * and what `onChange` listeners hear about. Changes are compared by their encoded form, so applying
 * the same decision twice emits once.
 */
import type { Decision, DecisionChange } from '../types.js';

type Listener = (change: DecisionChange) => void;

interface Entry {
  readonly decision: Decision;
  /** The canonical encoding (see codec.ts): equal text means equal decision. */
  readonly encoded: string;
}

export class DecisionView {
  readonly #entries = new Map<string, Entry>();
  readonly #listeners = new Set<Listener>();
  readonly #now: () => number;
  readonly #onListenerError: (error: unknown) => void;
  /** Unexpired decisions, rebuilt after a change or once the earliest of them expires. */
  #snapshot: readonly Decision[] | null = null;
  #snapshotExpiresAt = Infinity;

  constructor(now: () => number, onListenerError: (error: unknown) => void) {
    this.#now = now;
    this.#onListenerError = onListenerError;
  }

  encoded(key: string): string | undefined {
    return this.#entries.get(key)?.encoded;
  }

  /** Decisions held, expired ones included until pruned. */
  get size(): number {
    return this.#entries.size;
  }

  keys(): IterableIterator<string> {
    return this.#entries.keys();
  }

  /** Stores a decision; returns false (and emits nothing) when the view already held the same one. */
  put(decision: Decision, encoded: string): boolean {
    if (this.#entries.get(decision.key)?.encoded === encoded) return false;
    this.#entries.set(decision.key, { decision, encoded });
    this.#changed();
    this.#emit({ op: 'put', decision });
    return true;
  }

  delete(key: string): boolean {
    if (!this.#entries.delete(key)) return false;
    this.#changed();
    this.#emit({ op: 'delete', key });
    return true;
  }

  /** Replaces the whole view, emitting only the differences (a resynchronisation). */
  replaceAll(next: ReadonlyMap<string, Entry>): void {
    for (const key of [...this.#entries.keys()]) if (!next.has(key)) this.delete(key);
    for (const entry of next.values()) this.put(entry.decision, entry.encoded);
  }

  /** Keys of decisions expired at `now`. */
  expiredKeys(now: number): string[] {
    const keys: string[] = [];
    for (const [key, { decision }] of this.#entries) if (isExpired(decision, now)) keys.push(key);
    return keys;
  }

  snapshot(): readonly Decision[] {
    const now = this.#now();
    if (this.#snapshot === null || now >= this.#snapshotExpiresAt) {
      const live: Decision[] = [];
      let expiresAt = Infinity;
      for (const { decision } of this.#entries.values()) {
        if (isExpired(decision, now)) continue;
        live.push(decision);
        if (decision.expiresAt !== null && decision.expiresAt < expiresAt) expiresAt = decision.expiresAt;
      }
      this.#snapshot = live;
      this.#snapshotExpiresAt = expiresAt;
    }
    return this.#snapshot;
  }

  onChange(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(): void {
    this.#snapshot = null;
  }

  #emit(change: DecisionChange): void {
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (error) {
        // One faulty subscriber must not stop the others nor the store's own bookkeeping.
        this.#onListenerError(error);
      }
    }
  }
}

export function isExpired(decision: Decision, now: number): boolean {
  return decision.expiresAt !== null && decision.expiresAt <= now;
}

export { type ClientHelloFields, type Ja4Parts, type Ja4Transport, computeJa3, computeJa4, emptyHello, isGrease, ja3Text, ja4Parts } from './fingerprint.js';
export { ClientHelloReader, FingerprintCache, TLS_ARGUMENTS, type TlsFingerprint } from './reader.js';
export { FingerprintLists, type LoadedFingerprintList, isFingerprint, loadFingerprintList, parseFingerprintList } from './lists.js';
export { TlsScorer, type TlsJudgement } from './scorer.js';

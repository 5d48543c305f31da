/**
 * The seed's behaviour: every `check-client-ip` gets a random `ip_score` in
 * 0..100, in session scope, so HAProxy's `var(sess.iprep.ip_score)` is set.
 */
import { type MessageHandler, preEncode, setVar, T } from 'spop';

export const CHECK_CLIENT_IP = 'check-client-ip';

export interface RandomScoreOptions {
  /** Variable name (HAProxy prefixes it with `option var-prefix`). Default `ip_score`. */
  variable?: string;
  random?: () => number;
  /** Called for each scored address (debug logging). */
  onScore?: (address: string, score: number) => void;
}

export function randomScoreHandler(options: RandomScoreOptions = {}): MessageHandler {
  const variable = options.variable ?? 'ip_score';
  const random = options.random ?? Math.random;
  const { onScore } = options;
  // UINT32, as HAProxy's reference agent sends it. The 101 possible answers are
  // built and encoded once: a NOTIFY then allocates nothing here.
  const answers = Array.from({ length: 101 }, (_, score) => preEncode(setVar('sess', variable, T.uint32(score))));
  return (message) => {
    // The first argument, named or not (`args src` or `args ip=src`): its type is read in place,
    // the address itself only decoded for the debug log.
    const type = message.argType(0);
    if (type !== 'ipv4' && type !== 'ipv6') return undefined;
    const score = Math.floor(random() * 101);
    if (onScore !== undefined) onScore(String(message.value(0)), score);
    return answers[score];
  };
}

/** IPC between the node:cluster primary and its workers: channels, tagged messages, requests and replies (see README.md). */
export {
  type IpcChannel,
  type TaggedMessage,
  isChannelClosedError,
  isRequestId,
  isTagged,
  parentChannel,
  sendMessage,
  serveChannel,
} from './channel.js';
export { type ChannelPair, channelPair } from './channel-pair.js';
export { hasWorkerFlag, setWorkerFlag } from './flags.js';
export {
  ClusterRequestError,
  DEFAULT_MAX_PENDING_REQUESTS,
  RequestClient,
  type RequestClientOptions,
  type RequestFailureReason,
  type RequestMessage,
} from './request-client.js';

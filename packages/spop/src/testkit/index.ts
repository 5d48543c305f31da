export { FakeHaproxy, type ConnectTarget } from './fake-haproxy.js';
export { freePort } from './free-port.js';

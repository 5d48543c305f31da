export { FakeHaproxy, type ConnectTarget } from './fake-haproxy.js';

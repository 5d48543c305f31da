export { FakeHaproxy, haproxyHelloKv, type ConnectTarget, type HelloOptions } from './fake-haproxy.js';

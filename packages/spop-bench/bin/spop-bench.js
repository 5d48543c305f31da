#!/usr/bin/env node
// The compiled command lives in dist/ (built by `npm ci` through the root `prepare` script).
import { main } from '../dist/cli.js';

process.exitCode = await main(process.argv.slice(2));

#!/usr/bin/env node
// Thin launcher: the compiled entry point lives in dist/ (npm run build).
import { main } from '../dist/main.js';
await main(process.argv.slice(2));

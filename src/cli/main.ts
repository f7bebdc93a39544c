#!/usr/bin/env node
import { Md5Pool } from '../load/md5-pool.js';
import { S3Thread } from '../s3/s3-thread.js';
import { commandWordsAt } from './words.js';

// `station load` starts its S3 thread and a hash thread before anything else is loaded: each takes a tenth of a
// second to load its own modules, and from here that happens while this thread loads the commands and the load
// path, not after them (its first file went up ~30 ms sooner). A station with s3.directPut off leaves its spare
// S3 thread unused. Everything else is in run.ts.
const argv = process.argv.slice(2);
if (argv[commandWordsAt(argv)[0] ?? -1] === 'load') {
  S3Thread.prestart();
  Md5Pool.prestart();
}
await import('./run.js');

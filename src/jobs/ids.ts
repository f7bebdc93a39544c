import { randomInt } from 'node:crypto';
import { refused } from '../errors.js';

/** Job IDs (contract §1): 5 characters, no `0` and no `O`, case-insensitive, kept upper case. */
const ALPHABET = '123456789ABCDEFGHIJKLMNPQRSTUVWXYZ';
const JOB_ID = /^[1-9A-NP-Z]{5}$/;

export function newJobId(): string {
  let id = '';
  for (let i = 0; i < 5; i++) id += ALPHABET[randomInt(ALPHABET.length)];
  return id;
}

/** The canonical (upper-case) form of a job ID typed by a person, or `InvalidJobId`. */
export function normalizeJobId(input: string): string {
  const id = input.trim().toUpperCase();
  if (!JOB_ID.test(id)) throw refused('InvalidJobId', `"${input}" is not a job ID (5 characters of 1-9 and A-Z without O)`);
  return id;
}

export function isJobId(input: string): boolean {
  return JOB_ID.test(input.trim().toUpperCase());
}

// A password from the operator: the first line of standard input when it is
// a pipe or a file (scripts), else typed at a terminal twice, without echo.

import { CliError, Exit } from './exit.js';

/**
 * The first line of `input`, without its line ending ('' when there is none).
 * @throws what reading the stream throws.
 */
async function firstLine(input: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of input) {
    text += String(chunk);
    const end = text.indexOf('\n');
    if (end >= 0) {
      text = text.slice(0, end);
      break;
    }
  }
  return text.replace(/\r$/, '');
}

/** Keys typed after an Enter in the same chunk (a paste of two lines): the next question's. */
let typedAhead = '';

/**
 * One answer typed at the terminal with echo off (raw mode): Enter ends it,
 * Backspace takes back a character, Ctrl-C and Ctrl-D on an empty line give up.
 * @throws CliError USAGE when the operator gives up.
 */
function askHidden(prompt: string): Promise<string> {
  const input = process.stdin;
  // Echo off before the prompt shows: what is typed in answer to it must not appear.
  input.setRawMode(true);
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let answer = '';
    const finish = (error?: CliError) => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(answer);
    };
    const onData = (chunk: Buffer | string) => {
      const text = typedAhead + String(chunk);
      typedAhead = '';
      const chars = [...text];
      for (let i = 0; i < chars.length; i++) {
        const c = chars[i];
        if (c === '\r' || c === '\n') {
          typedAhead = chars.slice(i + 1).join('').replace(/^\n/, '');
          return finish();
        }
        if (c === '\u0003' || (c === '\u0004' && answer === '')) return finish(new CliError(Exit.USAGE, 'no password given: the file is unchanged'));
        if (c === '\u007f' || c === '\b') answer = [...answer].slice(0, -1).join('');
        else if (c >= ' ') answer += c;
      }
    };
    input.setEncoding('utf8');
    input.on('data', onData);
    input.resume();
    if (typedAhead !== '') onData('');
  });
}

/**
 * A new password: stdin's first line when stdin is not a terminal, else
 * asked twice at the terminal without echo (prompts on stderr).
 * @throws CliError USAGE when the two do not match or the operator gives up.
 */
export async function readPassword(prompt: string, again: string): Promise<string> {
  if (!process.stdin.isTTY) return firstLine(process.stdin);
  const first = await askHidden(prompt);
  const second = await askHidden(again);
  if (first !== second) throw new CliError(Exit.USAGE, 'the two passwords differ: the file is unchanged');
  return first;
}

import { spawn } from 'node-pty';
import type { ShellCommand, ShellPty } from './types.js';

/** Starts a runtime's shell command in a PTY of this process. */
export function spawnShellPty(shell: ShellCommand, size: { cols: number; rows: number }): ShellPty {
  return spawn(shell.file, [...shell.args], {
    name: shell.env.TERM ?? 'xterm-256color',
    cols: size.cols,
    rows: size.rows,
    cwd: '/',
    env: { ...shell.env },
  });
}

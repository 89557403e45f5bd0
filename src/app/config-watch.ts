/**
 * Watches the --config file, as upstream does: a KubeProxyConfiguration is read once, so when its
 * content changes on disk (a ConfigMap update) the process must restart to apply it.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

/** A running watch; `close()` stops it. */
export interface ConfigWatch {
  close(): void;
}

/**
 * Calls `onChange` once when the content of the file at `path` differs from what it held when the
 * watch started, or when it can no longer be read. The folder is watched rather than the file, so a
 * ConfigMap volume's update (a new `..data` symlink renamed into place) is seen as well as an in-place
 * write; events that leave the content as it was (touch, chmod, a rewrite of the same bytes) are ignored.
 */
export function watchConfigFile(path: string, onChange: (reason: string) => void): ConfigWatch {
  const read = (): string | undefined => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return undefined;
    }
  };
  const initial = read();
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  const check = (): void => {
    timer = undefined;
    if (done) return;
    const now = read();
    if (now === initial) return;
    done = true;
    watcher.close();
    onChange(now === undefined ? 'the file can no longer be read' : 'its content changed');
  };
  // Debounced: an editor or the kubelet may write in several steps.
  const watcher: FSWatcher = watch(dirname(path), { persistent: false }, (_event, name) => {
    if (name !== null && name !== basename(path) && !name.startsWith('..')) return;
    if (timer === undefined) timer = setTimeout(check, 200);
  });
  watcher.on('error', () => undefined);
  return {
    close(): void {
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      watcher.close();
    },
  };
}

/**
 * Entry point: argv -> configuration -> command. The only place that calls process.exit.
 */
import { writeFileSync } from 'node:fs';
import './backends/index.js';
import { parseCommandLine, helpText, renderConfigFile } from './config/load.js';
import { createLogger } from './observability/logger.js';
import { runCleanup, runRender } from './app/app.js';
import { runDaemon } from './app/proxy-server.js';
import { describeFailure } from './errors.js';
import { runExplain } from './app/explain-command.js';
import { ExplainInputError } from './explain/explain.js';
import { runInitOnly } from './app/linux-setup.js';
import { getBackend } from './backends/backend.js';
import { watchConfigFile } from './app/config-watch.js';
import { KUBERNETES_COMPAT, VERSION } from './version.js';
import { tuneHeapForDaemon } from './observability/memory.js';
import { SHUTDOWN_WAIT_MS, stopWithin } from './app/shutdown.js';

function fail(msg: string, code = 1): never {
  process.stderr.write(`kube-proxy: ${msg}\n`);
  process.exit(code);
}

/** Runs the command line `argv` (without node and the script). */
export async function main(argv: readonly string[]): Promise<void> {
  let cmd;
  try {
    cmd = parseCommandLine(argv);
  } catch (err) {
    fail(`${err instanceof Error ? err.message : String(err)}\nRun 'kube-proxy --help' for usage.`, 2);
  }
  const { verbosity, format, splitStream } = cmd.config.logging;
  const logger = createLogger(verbosity, process.stderr, {
    format: format === 'json' ? 'json' : 'text',
    splitStream: format === 'json' ? splitStream?.json : splitStream?.text,
  });
  for (const w of cmd.warnings) logger.warn(w);

  try {
    switch (cmd.command) {
      case 'help':
        process.stdout.write(helpText());
        return;
      case 'version':
        process.stdout.write(
          `kube-proxy-ts v${VERSION} (behaves as Kubernetes kube-proxy ${KUBERNETES_COMPAT})\n`,
        );
        return;
      case 'write-config':
        writeFileSync(cmd.writeConfigTo, renderConfigFile(cmd.config));
        logger.info({ path: cmd.writeConfigTo }, 'wrote the configuration file');
        return;
      case 'init-only':
        process.exit(runInitOnly(cmd.config, getBackend(cmd.config.mode)?.kernel ?? false, logger) ? 0 : 1);
        return;
      case 'cleanup':
        process.exit((await runCleanup(logger)) ? 0 : 1);
        return;
      case 'render':
        await runRender(cmd, logger, (s) => process.stdout.write(s));
        return;
      case 'explain': {
        const code = await runExplain(
          cmd,
          logger,
          (s) => process.stdout.write(s),
          (s) => process.stderr.write(s),
        );
        if (code !== 0) process.exit(code);
        return;
      }
      case 'run': {
        tuneHeapForDaemon();
        const daemon = await runDaemon(cmd, logger);
        let stopping = false;
        const shutdown = (sig: string): void => {
          if (stopping) return;
          stopping = true;
          logger.info({ signal: sig }, 'shutting down');
          stopWithin(() => daemon.stop()).then(
            (how) => {
              if (how === 'timeout')
                logger.warn(
                  { waitedMs: SHUTDOWN_WAIT_MS },
                  'a sync still running at shutdown; exiting without it (the next start resyncs)',
                );
              process.exit(0);
            },
            (err: unknown) => fail(`shutdown: ${describeFailure(err)}`),
          );
        };
        process.on('SIGINT', () => {
          shutdown('SIGINT');
        });
        process.on('SIGTERM', () => {
          shutdown('SIGTERM');
        });
        // Upstream reads --config once and exits when it changes on disk, so the pod restarts with it.
        if (cmd.configPath) {
          const path = cmd.configPath;
          watchConfigFile(path, (reason) => {
            if (stopping) return;
            stopping = true;
            logger.error(
              { path, reason },
              'the --config file changed on disk; exiting so that the restarted proxy applies it',
            );
            daemon.stop().then(
              () => process.exit(1),
              () => process.exit(1),
            );
          });
        }
        daemon.firstSync.catch((err: unknown) => {
          fail(describeFailure(err));
        });
        return;
      }
    }
  } catch (err) {
    // A catalogued error is one line for the operator; anything else is a bug and keeps its stack.
    // Bad explain input is a usage error: exit status 2, like a bad flag.
    if (err instanceof ExplainInputError) fail(err.message, 2);
    fail(describeFailure(err));
  }
}

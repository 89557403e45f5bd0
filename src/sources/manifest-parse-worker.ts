/**
 * Worker-thread entry: parses and validates one manifest file (parseManifestText, readManifestDocs) off
 * the main thread, so a big file cannot stall the event loop (health checks, syncs), and under the
 * worker's own heap limit, so a pathological one cannot grow the proxy's memory without bound. Posts a
 * {@link ManifestFileResult}.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readManifestFile } from './manifest-objects.js';

const { name, text } = workerData as { name: string; text: string };
parentPort?.postMessage(readManifestFile(name, text));

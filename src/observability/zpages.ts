/**
 * /flagz and /statusz, shaped like upstream's component-base z-pages (alpha there, behind the
 * ComponentFlagz and ComponentStatusz gates): plain text, a title line `kube-proxy flagz` /
 * `kube-proxy statusz`, a one-line caveat, a blank line, then `name=value` lines (flagz) or
 * `Key: value` lines (statusz). Pure text builders; the metrics server serves them.
 */

const CAVEAT = 'Warning: for people debugging this process; the format is not stable and not for machines.';

/** The /flagz body: every flag with its effective value (given, else default), sorted by name. */
export function flagzText(values: Readonly<Record<string, string>>): string {
  const lines = Object.keys(values)
    .sort()
    .map((k) => `${k}=${values[k]}`);
  return ['', 'kube-proxy flagz', CAVEAT, '', ...lines, ''].join('\n');
}

export interface StatuszInfo {
  readonly started: Date;
  readonly now: Date;
  readonly binaryVersion: string;
  /** The upstream minor version whose behaviour we follow, e.g. "1.34". */
  readonly emulationVersion: string;
  readonly runtimeVersion: string;
  readonly paths: readonly string[];
}

/** Go-time-like "Wed Dec 02 11:53:14 UTC 2026", in UTC. */
function utcStamp(d: Date): string {
  // toUTCString: "Wed, 02 Dec 2026 11:53:14 GMT"
  const [wd = '', day = '', mon = '', year = '', time = ''] = d.toUTCString().replace(',', '').split(' ');
  return `${wd} ${mon} ${day} ${time} UTC ${year}`;
}

/** The /statusz body: start time, uptime, versions and the paths this server answers. */
export function statuszText(info: StatuszInfo): string {
  const up = Math.max(0, Math.floor((info.now.getTime() - info.started.getTime()) / 1000));
  const uptime = `${Math.floor(up / 3600)} hr ${String(Math.floor((up % 3600) / 60)).padStart(2, '0')} min ${String(up % 60).padStart(2, '0')} sec`;
  return [
    '',
    'kube-proxy statusz',
    CAVEAT,
    '',
    `Started: ${utcStamp(info.started)}`,
    `Up: ${uptime}`,
    `Node.js version: ${info.runtimeVersion}`,
    `Binary version: ${info.binaryVersion}`,
    `Emulation version: ${info.emulationVersion}`,
    `Paths: ${[...info.paths].sort().join(' ')}`,
    '',
  ].join('\n');
}

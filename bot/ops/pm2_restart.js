'use strict';
// The restart step's pm2 work in one Node process, through pm2's own programmatic API (the module its CLI is
// made of, connected to the same daemon): each app's state and error-log size before, `pm2 restart` of each app
// in turn (as `pm2 restart a b` does, never updating its environment), then its state every 100 ms until each
// app is online with a new pid or the time runs out. The pm2 CLI starts Node and loads pm2 at each of these
// three calls (about 0.2-0.3 s each); this does it once.
//
//   node pm2_restart.js <pm2 package folder> '{"apps": ["api"], "timeout_ms": 30000}'
//
// pm2 prints to stdout as it works; the answer is the last line, after MARK: {"before": [...], "sizes": {...},
// "missing": [...], "restart_error": null | "...", "after": [...]}, each list as `pm2 jlist` prints it.

const fs = require('fs');

const MARK = '@@rollback-bot@@';
const pm2 = require(process.argv[2]);
const { apps, timeout_ms: timeoutMs } = JSON.parse(process.argv[3]);

function answer(found) {
  const said = { ...found, before: slim(found.before), after: slim(found.after) };
  pm2.disconnect(() => {
    process.stdout.write('\n' + MARK + JSON.stringify(said) + '\n', () => process.exit(0));
  });
}

function fail(where, err) {
  process.stderr.write(`${where}: ${(err && err.message) || err}\n`);
  process.exit(2);
}

function sizeOf(path) {
  try {
    return path ? fs.statSync(path).size : 0;
  } catch (_) {
    return 0;
  }
}

// Only what the bot reads of each process: pm2_env also holds the app's environment (its secrets).
function slim(list) {
  return list.map((proc) => {
    const env = proc.pm2_env || {};
    return {
      name: proc.name, pid: proc.pid,
      pm2_env: { status: env.status, restart_time: env.restart_time, pm_uptime: env.pm_uptime,
                 min_uptime: env.min_uptime, pm_out_log_path: env.pm_out_log_path,
                 pm_err_log_path: env.pm_err_log_path },
    };
  });
}

function restartEach(names, done) {
  if (names.length === 0) return done(null);
  pm2.restart(names[0], (err) => (err ? done(err) : restartEach(names.slice(1), done)));
}

pm2.connect((err) => {
  if (err) return fail('connect', err);
  pm2.list((err, before) => {
    if (err) return fail('list', err);
    const pids = {};
    const sizes = {};
    for (const proc of before) {
      if (apps.includes(proc.name)) {
        pids[proc.name] = proc.pid;
        sizes[proc.name] = sizeOf(proc.pm2_env && proc.pm2_env.pm_err_log_path);
      }
    }
    const missing = apps.filter((app) => !(app in pids));
    if (missing.length) return answer({ before, sizes, missing, restart_error: null, after: [] });
    restartEach(apps, (err) => {
      if (err) {
        return answer({ before, sizes, missing, restart_error: String((err && err.message) || err), after: [] });
      }
      const deadline = Date.now() + timeoutMs;
      const look = () => pm2.list((err, after) => {
        if (err) return fail('list', err);
        const last = {}; // by name, the last of an app's processes, as before (and as the bot reads the list)
        for (const proc of after) last[proc.name] = proc;
        const up = apps.every((app) => last[app] && last[app].pm2_env.status === 'online' && last[app].pid !== pids[app]);
        if (up || Date.now() >= deadline) return answer({ before, sizes, missing, restart_error: null, after });
        setTimeout(look, 100);
      });
      look();
    });
  });
});

'use strict';
// The restart step's pm2 work in one Node process, through pm2's own programmatic API (the module its CLI is
// made of, connected to the same daemon): each app's state and error-log size before, `pm2 restart` of each app
// in turn (as `pm2 restart a b` does, never updating its environment), then its state every 100 ms until each
// app is online with a new pid or the time runs out. The pm2 CLI starts Node and loads pm2 at each of these
// three calls (about 0.25 s each); this does it once.
//
//   node pm2_restart.js <pm2 package folder> '{"apps": ["api"], "timeout_ms": 30000, "grace_ms": 10000}'
//
// With "list_at_ms" (epoch ms) instead, it restarts nothing: it connects at once and lists pm2's processes no
// sooner than that time, in "after" (verify, right after a restart: whether each app stayed up for its
// min_uptime, asked the moment that is known, without a Node start-up after it). Its timeout_ms and grace_ms
// count from that time.
//
// The answer is the last line of stdout, after MARK: {"before": [...], "sizes": {...}, "new_daemon": bool,
// "restart_error": null | "...", "after": [...]}, each list as `pm2 jlist` prints it, cut to what the bot reads.
// A daemon that stops answering (killed mid-restart) never calls back: past timeout_ms + grace_ms in all (from
// list_at_ms in that mode), the helper answers with what it has and says so, rather than leave the step silent.

const fs = require('fs');

const MARK = '@@rollback-bot@@';
const pm2 = require(process.argv[2]);
// grace_ms: for the restart itself (each app's kill_timeout) and the calls around it
const { apps = [], list_at_ms: listAtMs = null, timeout_ms: timeoutMs = 30000, grace_ms: graceMs = 10000 } =
  JSON.parse(process.argv[3]);

const found = { before: [], sizes: {}, new_daemon: false, restart_error: null, after: [] };
let answered = false;

// connected: false when the daemon stopped answering (a disconnect would wait on it too)
function answer(connected = true) {
  if (answered) return;
  answered = true;
  const said = { ...found, before: slim(found.before), after: slim(found.after) };
  const write = () => process.stdout.write('\n' + MARK + JSON.stringify(said) + '\n', () => process.exit(0));
  if (connected) pm2.disconnect(write); else write();
}

function failed(what, err) {
  found.restart_error = `${what}: ${(err && err.message) || err}`;
  answer();
}

setTimeout(() => {
  found.restart_error = `pm2 did not answer within ${Math.round((timeoutMs + graceMs) / 1000)}s`
    + (found.before.length ? ' (the restart may have been done: pm2 status shows it)' : '');
  answer(false);
}, Math.max(0, (listAtMs ?? 0) - Date.now()) + timeoutMs + graceMs).unref();

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

function listAt(when) {
  const wait = when - Date.now();
  if (wait > 0) return setTimeout(() => listAt(when), wait);
  pm2.list((err, list) => {
    if (err) return failed("pm2's process list", err);
    found.after = list;
    answer();
  });
}

pm2.connect((err, meta) => {
  if (err) return failed('pm2 could not be reached', err);
  found.new_daemon = Boolean(meta && meta.new_pm2_instance);
  if (listAtMs !== null) return listAt(listAtMs);
  pm2.list((err, before) => {
    if (err) return failed("pm2's process list", err);
    found.before = before;
    const pids = {};
    for (const proc of before) {
      if (apps.includes(proc.name)) {
        pids[proc.name] = proc.pid;
        found.sizes[proc.name] = sizeOf(proc.pm2_env && proc.pm2_env.pm_err_log_path);
      }
    }
    if (apps.some((app) => !(app in pids))) return answer(); // pm2 does not know one: nothing is restarted
    restartEach(apps, (err) => {
      if (err) return failed('pm2 restart', err);
      const deadline = Date.now() + timeoutMs;
      const look = () => pm2.list((err, after) => {
        if (err) return failed("pm2's process list", err);
        found.after = after;
        const last = {}; // by name, the last of an app's processes, as before (and as the bot reads the list)
        for (const proc of after) last[proc.name] = proc;
        const up = apps.every((app) => last[app] && last[app].pm2_env.status === 'online' && last[app].pid !== pids[app]);
        if (up || Date.now() >= deadline) return answer();
        setTimeout(look, 100);
      });
      look();
    });
  });
});

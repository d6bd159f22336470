// rollback-bot under pm2, for teams that run every service under pm2:
//   pm2 start deploy/ecosystem.config.js && pm2 save
// It runs the installed wheel's `rollback-bot run` (a venv at /opt/rollback-bot: ROLLBACK_BOT_BIN to change it) in
// its own folder, /var/lib/rollback-bot (ROLLBACK_BOT_HOME), which holds rollback.yml (its store.data_dir: ./data)
// and .env (mode 0600) with the secrets: SLACK_BOT_TOKEN=…, SLACK_APP_TOKEN=…, STATE_STORE_URI=… (optional).
// Start it as the user that owns the target's folder and pm2 daemon, with that daemon's PM2_HOME.
const bin = process.env.ROLLBACK_BOT_BIN || "/opt/rollback-bot/bin/rollback-bot";
const home = process.env.ROLLBACK_BOT_HOME || "/var/lib/rollback-bot";

module.exports = {
  apps: [
    {
      name: "rollback-bot",
      script: bin,
      args: "run",
      interpreter: "none", // a console script, not a Node program
      cwd: home,
      // Restarted whenever it exits, 1 s after the first failure, then up to 15 s apart. A start-up problem exits 2
      // with one line in the error log naming what to fix (a missing secret, a refused token, a store written by a
      // newer release, but also Slack not reachable yet): once it is fixed, the next try starts it.
      autorestart: true,
      exp_backoff_restart_delay: 1000,
      kill_timeout: 60000, // SIGTERM stops it cleanly; SIGKILL only after a minute
      time: true, // timestamps in the log files
    },
  ],
};

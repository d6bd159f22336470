"""The runbook's own lists, word for word: when to roll back, the checklists, the success criteria, the RCA."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Item(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    text: str
    group: str = ""
    automatic: bool = False  # the bot ticks it (checklist) or checks it live (success criteria)


# "When to Rollback", grouped as the runbook groups them.
ROLLBACK_CRITERIA: list[Item] = [
    Item(key="gen_fail", group="Critical production issues",
         text="Assessment generation fails for >50% of sessions"),
    Item(key="crash_loop", group="Critical production issues", text="Backend crashes repeatedly"),
    Item(key="db_corruption", group="Critical production issues", text="Database corruption detected"),
    Item(key="data_leak", group="Critical production issues", text="Data leakage between students"),
    Item(key="attempts", group="Data integrity issues", text="Attempt tracking not working"),
    Item(key="memory_mix", group="Data integrity issues", text="Patient memory cross-contamination"),
    Item(key="scores", group="Data integrity issues", text="Assessment scores incorrect/missing"),
    Item(key="timeouts", group="Performance issues", text="Assessment timeouts >120s consistently"),
    Item(key="slow", group="Performance issues", text="Backend response times >5s"),
    Item(key="db_fail", group="Performance issues", text="Database queries failing"),
    Item(key="sessions", group="User-facing issues", text="Students cannot complete sessions"),
    Item(key="validate", group="User-facing issues", text="Professors cannot validate assessments"),
    Item(key="frontend", group="User-facing issues", text="Frontend errors due to API changes"),
]

# "Pre-Rollback Checklist". Automatic items are ticked by the bot when it does them.
PRE_ROLLBACK_CHECKLIST: list[Item] = [
    Item(key="document", text="Document the issue (screenshots, logs, error messages)"),
    Item(key="notify", text="Notify all stakeholders (user, AI team, frontend team)", automatic=True),
    Item(key="backup_db", text="Backup current database state", automatic=True),
    Item(key="pm2_logs", text="Save current PM2 logs", automatic=True),
    Item(key="commit", text="Note the current git commit hash", automatic=True),
]

# "Rollback Success Criteria". Automatic ones the bot checks live at close; people confirm the rest.
SUCCESS_CRITERIA: list[Item] = [
    Item(key="backend_running", text="Backend running without errors", automatic=True),
    Item(key="core_features", text="All core features working (sessions, feedback, cases)"),
    Item(key="no_log_errors", text="No critical errors in logs", automatic=True),
    Item(key="db_queries", text="Database queries successful", automatic=True),
    Item(key="frontend", text="Frontend can interact with backend"),
    Item(key="students", text="Students can complete sessions"),
    Item(key="professors", text="Professors can validate feedback"),
    Item(key="no_corruption", text="No data corruption detected"),
]

# "Prevention Checklist", posted as follow-ups when the incident closes.
PREVENTION_CHECKLIST: list[str] = [
    "More comprehensive testing before production",
    "Gradual rollout (10% → 50% → 100%)",
    "Feature flags for all major changes",
    "Database migration dry-runs",
    "Staging environment testing",
    "Load testing before production",
    "Monitoring alerts configured",
    "Backup procedures automated",
]

# The root-cause questions.
RCA_PHASES = ["Phase 1", "Phase 2", "Phase 3", "Not known yet"]
RCA_CAUSES = {"dependency": "Missing dependency", "ai_server": "AI server issue",
              "schema": "Database schema conflict", "frontend": "Frontend compatibility", "other": "Something else"}

CRITERIA_KEYS = {item.key for item in ROLLBACK_CRITERIA}
CRITERIA_TEXT = {item.key: item.text for item in ROLLBACK_CRITERIA}


def criteria_groups() -> list[tuple[str, list[Item]]]:
    groups: dict[str, list[Item]] = {}
    for item in ROLLBACK_CRITERIA:
        groups.setdefault(item.group, []).append(item)
    return list(groups.items())

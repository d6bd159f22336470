"""An incident fixed by a safer alternative is finished like a rollback (issue 20): the lifecycle, not which
step ran last, drives the panel, the stakeholder milestones, the post-rollback watch, close and the postmortem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.domain.checklists import SUCCESS_CRITERIA
from bot.domain.incident import Milestone
from bot.domain.lifecycle import Fix, Phase
from bot.ids import Action
from tests.alternatives.test_alternatives import finished, started
from tests.comms.test_closeout import incident_of, posts
from tests.conftest import INCIDENT
from tests.runbook.test_full_rollback import checklists_message

HUMAN = [item.key for item in SUCCESS_CRITERIA if not item.automatic]


def panel_text(emulator: Emulator, ts: str) -> str:
    return str(next(m for m in emulator.ws.channel_messages(INCIDENT) if m["ts"] == ts)["blocks"])


@pytest.mark.slow
def test_a_feature_flag_fix_restores_service_tells_stakeholders_is_watched_and_closes_with_its_time(
        emulator: Emulator, live_sandbox: Sandbox, start_bot: Callable[..., SocketModeBot]) -> None:
    bot = start_bot()
    ts = started(emulator, bot)
    emulator.slash("casey", "incident-rollback", "flag ENABLE_REALTIME_TIPS=false").wait()
    assert "— succeeded" in finished(emulator, ts, "Verify rollback")

    record = emulator.ws.wait_for(lambda: (i := incident_of(bot)).lifecycle.phase is Phase.RESTORED and i, 10,
                                  "service restored")
    assert record.lifecycle.restored_with is Fix.FLAG
    fixed_at = record.milestones[Milestone.ROLLBACK_COMPLETED]
    panel = emulator.ws.wait_for(lambda: (p := panel_text(emulator, ts)) and "Flag off" in p and p, 10, "the panel")
    assert "/rollback backup" not in panel.split("*Next:*")[1].split("'")[0]  # before: Next said backup forever
    assert "*Next:* confirm the success criteria" in panel
    assert "✅ Feature flag  →  ✅ Restart  →  ✅ Verify" in panel
    assert "🚨 Rollback RB-0001 — service restored (feature flag), watching" in panel  # the phase, in words
    assert f"Flag off <!date^{int(fixed_at.timestamp())}^" in panel  # before: *Rolled back* stayed "—"

    update = emulator.ws.wait_for(lambda: posts(emulator, "(fix applied: feature flag)"), 10, "the update")[0]
    assert "STABLE (feature flag changed)" in str(update["blocks"])

    bot.services.monitor.run_once()  # the post-rollback watch counts for this incident now
    emulator.ws.wait_for(lambda: incident_of(bot).watch.checks == 1, 10, "the watch counting")

    emulator.click("casey", "incident-rollback", checklists_message(emulator)["ts"], Action.SUCCESS,
                   selected=HUMAN).wait()
    emulator.ws.wait_for(lambda: len(incident_of(bot).success) == len(HUMAN), 10, "the ticks")
    emulator.slash("casey", "incident-rollback", "close").wait()
    closed = emulator.ws.wait_for(lambda: (i := incident_of(bot)).close_out and i.close_out.postmortem and i, 60,
                                  "the postmortem")
    assert not closed.close_out.forced and closed.lifecycle.phase is Phase.CLOSED
    postmortem = Path(closed.close_out.postmortem).read_text()
    assert f"| Fix applied: feature flag | {fixed_at:%Y-%m-%d %H:%M:%S} UTC |" in postmortem
    assert "- Outcome: service restored by the feature flag" in postmortem
    assert "| System restored | not reached |" not in postmortem  # the close-out checks confirmed it
